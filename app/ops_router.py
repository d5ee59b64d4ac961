"""Operational endpoints: health, readiness, ingest counters."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends
from sqlalchemy import text

from app.runtime import Runtime
from core.policy import Action
from web.deps import get_runtime
from web.guard import allow
from web.targets import From

router = APIRouter(tags=["operations"])


# The composition root's own routes see the whole runtime.
RuntimeDep = Annotated[Runtime, Depends(get_runtime)]


@router.get("/healthz")
async def health() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz")
async def ready(runtime: RuntimeDep) -> dict[str, Any]:
    async with runtime.engine.connect() as connection:
        await connection.execute(text("SELECT 1"))
    return {"database": "ok", "mqtt": "ok" if runtime.mqtt and runtime.mqtt.connected else "down"}


@router.get("/api/v1/ingest", dependencies=[allow(Action.READ, From.PROVINCE)])
async def ingest_stats(runtime: RuntimeDep) -> dict[str, Any]:
    """What arrived from devices and what was refused (malformed, unknown device, ...)."""
    return {
        "counts": dict(runtime.stats.counts),
        "backlog": {
            "acks": runtime.acks.backlog if runtime.acks else 0,
            "link": runtime.link.backlog if runtime.link else 0,
        },
        "batches": {
            "acks": runtime.acks.summary() if runtime.acks else {},
            "link": runtime.link.summary() if runtime.link else {},
        },
        "mqtt_reconnects": runtime.mqtt.reconnects if runtime.mqtt else 0,
        "recent_rejects": [
            {"at": r.at.isoformat(), "topic": r.topic, "reason": r.reason, "payload": r.payload}
            for r in runtime.stats.recent
        ],
    }
