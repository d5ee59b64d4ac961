"""The offline engine: espeak-ng, installed with apt-get, speaks Vietnamese.

Its voice is robotic but clear, works with no network (provincial networks are often
closed) and starts in milliseconds, so an emergency can go out from typed text alone.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from media.tts.engine import SpeechFailed

SYNTH_TIMEOUT_S = 60
# BCP 47 tag -> espeak-ng voice. Northern Vietnamese is the broadcast standard; the
# central and southern variants are there for provinces that prefer them.
VOICES = {
    "vi": "vi",
    "vi-VN": "vi",
    "vi-VN-x-central": "vi-vn-x-central",
    "vi-VN-x-south": "vi-vn-x-south",
    "en": "en",
}


class EspeakEngine:
    name = "espeak-ng"
    languages = frozenset(VOICES)

    def __init__(self, *, words_per_minute: int = 140) -> None:
        # Slower than espeak's default 175: loudspeaker horns echo between buildings.
        self._wpm = words_per_minute

    async def synthesize(self, text: str, language: str, out: Path) -> None:
        proc = await asyncio.create_subprocess_exec(
            "espeak-ng",
            "-v",
            VOICES[language],
            "-s",
            str(self._wpm),
            "-w",
            str(out),
            "--stdin",  # no argument-length limit, no shell quoting
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )
        try:
            _, err = await asyncio.wait_for(proc.communicate(text.encode()), SYNTH_TIMEOUT_S)
        except TimeoutError:
            proc.kill()
            await proc.wait()
            raise SpeechFailed("text-to-speech took too long") from None
        if proc.returncode != 0:
            raise SpeechFailed(f"text-to-speech failed: {err.decode(errors='replace')[:200]}")
