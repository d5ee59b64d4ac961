"""Text-to-speech behind one interface, so a better voice can replace the offline one.

A commercial Vietnamese voice (a cloud API or an on-premises server) is one more class
with the same two members, registered in ENGINES; callers never change.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

from core.errors import InvalidInput


class SpeechEngine(Protocol):
    name: str
    languages: frozenset[str]  # BCP 47 tags it can speak

    async def synthesize(self, text: str, language: str, out: Path) -> None:
        """Write the spoken text to `out` as WAV; raise SpeechFailed if it cannot."""
        ...


class SpeechFailed(InvalidInput):
    def __init__(self, message: str) -> None:
        super().__init__(message, detail={"field": "text"})


class UnsupportedLanguage(InvalidInput):
    def __init__(self, engine: SpeechEngine, language: str) -> None:
        spoken = ", ".join(sorted(engine.languages))
        super().__init__(
            f"the {engine.name} voice cannot speak {language!r} (it speaks {spoken}); "
            "upload a recording instead",
            detail={"field": "language"},
        )
