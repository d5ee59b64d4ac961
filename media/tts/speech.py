"""Typed text to a broadcastable media item: normalise, synthesise, frame, ingest."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from core.errors import InvalidInput
from core.settings import Settings
from media import service as media_service
from media import storage
from media.schemas import MediaRead
from media.service import IngestContext
from media.tts import vietnamese
from media.tts.compose import frame_speech
from media.tts.engine import SpeechEngine, UnsupportedLanguage
from media.tts.espeak import EspeakEngine

MAX_TEXT_CHARS = 5000  # about five minutes read aloud; longer is a programme, not a bulletin

# Engines by the name settings.tts_engine gives; a commercial voice registers here.
ENGINES: dict[str, Callable[[Settings], SpeechEngine]] = {
    "espeak-ng": lambda s: EspeakEngine(words_per_minute=s.tts_words_per_minute),
}


def engine_for(settings: Settings) -> SpeechEngine:
    return ENGINES[settings.tts_engine](settings)


DRILL_SENTENCES = {"vi": "Đây là tin diễn tập.", "en": "This is an exercise."}


def drill_sentence(language: str) -> str:
    """What an exercise opens with, in the language it is read in (English otherwise)."""
    return DRILL_SENTENCES.get(language.split("-")[0].lower(), DRILL_SENTENCES["en"])


def prepare(text: str, language: str) -> str:
    """What the engine reads: numbers, dates and times spelt out for Vietnamese."""
    text = text.strip()
    if not text:
        raise InvalidInput("text is empty", detail={"field": "text"})
    if len(text) > MAX_TEXT_CHARS:
        raise InvalidInput(
            f"text is {len(text)} characters; the limit is {MAX_TEXT_CHARS}",
            detail={"field": "text"},
        )
    return vietnamese.normalise(text) if language.lower().startswith("vi") else text


async def speak(ctx: IngestContext, *, text: str, language: str) -> MediaRead:
    return await speak_parts(ctx, [(text, language)])


async def speak_parts(ctx: IngestContext, parts: list[tuple[str, str]]) -> MediaRead:
    """One clip of (text, language) parts read one after the other (a CAP alert carried
    in Vietnamese and English), behind one chime."""
    engine = engine_for(ctx.settings)
    for _, language in parts:
        if language not in engine.languages:
            raise UnsupportedLanguage(engine, language)
    spoken = [(prepare(text, language), language) for text, language in parts]
    media_dir = ctx.settings.media_dir
    raws = [await asyncio.to_thread(storage.temp_file, media_dir, ".wav") for _ in spoken]
    framed = await asyncio.to_thread(storage.temp_file, media_dir, ".wav")
    try:
        for (text, language), raw in zip(spoken, raws, strict=True):
            await engine.synthesize(text, language, raw)
        await asyncio.to_thread(frame_speech, raws, framed)
        sha256, size = await asyncio.to_thread(storage.hash_file, framed)
    except BaseException:
        await asyncio.to_thread(framed.unlink, missing_ok=True)
        raise
    finally:
        for raw in raws:
            await asyncio.to_thread(raw.unlink, missing_ok=True)
    languages = "+".join(language for _, language in parts)
    return await media_service.ingest(
        ctx, source=framed, sha256=sha256, size=size, original_name=f"tts:{engine.name}:{languages}"
    )
