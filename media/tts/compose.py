"""Frame synthesised speech the way a commune station airs a bulletin: an attention chime,
a breath, the text, a pause. Clips are seconds long, so pydub's in-memory editing is the
right tool here (long uploads go through ffmpeg alone: media/pipeline.py)."""

from __future__ import annotations

from pathlib import Path

from pydub import AudioSegment
from pydub.generators import Sine

CHIME_TONES_HZ = (784, 659)  # G5 then E5: the two-note call listeners know from radio
CHIME_NOTE_MS = 350
LEAD_IN_MS = 400
TAIL_MS = 700
SAMPLE_RATE = 22050  # espeak-ng's native rate; the pipeline resamples for delivery


def chime() -> AudioSegment:
    notes = [
        Sine(hz, sample_rate=SAMPLE_RATE)
        .to_audio_segment(duration=CHIME_NOTE_MS, volume=-12.0)
        .fade_in(20)
        .fade_out(120)
        for hz in CHIME_TONES_HZ
    ]
    return sum(notes[1:], notes[0])


LANGUAGE_PAUSE_MS = 1200  # between the same message in one language and the next


def frame_speech(parts: list[Path], out: Path, *, with_chime: bool = True) -> None:
    """Write chime + silence + speech + silence to `out` as mono WAV; several speech files
    (one message in several languages) follow each other with a pause between."""
    speech = AudioSegment.empty()
    for k, path in enumerate(parts):
        with path.open("rb") as f:  # pydub leaves files it opens itself unclosed
            part = AudioSegment.from_wav(f).set_channels(1).set_frame_rate(SAMPLE_RATE)
        pause = AudioSegment.silent(duration=LANGUAGE_PAUSE_MS, frame_rate=SAMPLE_RATE)
        speech = speech + pause + part if k else part
    silence = AudioSegment.silent(duration=LEAD_IN_MS, frame_rate=SAMPLE_RATE)
    tail = AudioSegment.silent(duration=TAIL_MS, frame_rate=SAMPLE_RATE)
    head = chime() + silence if with_chime else silence
    (head + speech + tail).export(out, format="wav").close()
