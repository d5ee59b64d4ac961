"""Generated audio with ffmpeg: the demo's warning, load-test clips, the conformance kit's
clips, test fixtures."""

from __future__ import annotations

import subprocess
from pathlib import Path

# Two tones alternating every half second: unmistakably an alert, even on a horn speaker.
WARNING_TONE = "aevalsrc=0.4*sin(2*PI*(660+220*gt(mod(t\\,1)\\,0.5))*t)"


def tone(
    path: Path,
    seconds: float,
    *,
    source: str = "sine=frequency=440",
    sample_rate: int = 22050,
    bitrate: str = "32k",
) -> Path:
    """Write `seconds` of a lavfi source, mono, encoded by the file's suffix (mp3, wav,
    ogg and webm as Opus, m4a as AAC, flac)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    separator = ":" if "=" in source else "="
    args = [
        "ffmpeg",
        "-v",
        "error",
        "-y",
        "-f",
        "lavfi",
        "-i",
        f"{source}{separator}d={seconds}",
        "-ac",
        "1",
        "-ar",
        str(sample_rate),
    ]
    if path.suffix == ".mp3":
        args += ["-b:a", bitrate]
    elif path.suffix in (".ogg", ".webm"):
        args += ["-c:a", "libopus", "-ar", "48000"]  # what a browser records
    elif path.suffix == ".m4a":
        args += ["-c:a", "aac", "-b:a", bitrate]
    subprocess.run([*args, str(path)], check=True)
    return path


def still_image(path: Path, *, color: str = "red", size: str = "64x32") -> Path:
    """A one-colour PNG/JPEG/WebP (by suffix): e-board pictures in the demo and tests."""
    path.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [
            *("ffmpeg", "-v", "error", "-y", "-f", "lavfi"),
            *("-i", f"color=c={color}:s={size}", "-frames:v", "1", str(path)),
        ],
        check=True,
    )
    return path
