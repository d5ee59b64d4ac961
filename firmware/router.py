"""Firmware images and rollouts over HTTP."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Form, Query, UploadFile, status

from core.database import session_scope
from core.policy import Action
from core.schemas import NO_NUL, IntId
from firmware import images, rollouts
from firmware.models import Rollout
from firmware.schemas import FirmwareRead, RolloutCreate, RolloutRead
from media import storage
from web.deps import ActorDep, RuntimeDep, SessionDep
from web.guard import allow
from web.targets import From, Resolver, stored

router = APIRouter(tags=["firmware"])
# How the guard finds what a rollout in the path touches (registered in app/main.py).
TARGETS: dict[From, Resolver] = {From.ROLLOUT: stored(Rollout, "rollout_id", numeric=True)}


@router.post(
    "/api/v1/firmware",
    status_code=status.HTTP_201_CREATED,
    dependencies=[allow(Action.FIRMWARE, From.PROVINCE)],
)
async def upload_firmware(
    file: UploadFile,
    version: Annotated[str, Form(max_length=64, pattern=NO_NUL)],
    runtime: RuntimeDep,
    actor: ActorDep,
    model: Annotated[str | None, Form(max_length=64, pattern=NO_NUL)] = None,
    notes: Annotated[str, Form(max_length=2000, pattern=NO_NUL)] = "",
    signature: Annotated[
        str | None,
        Form(
            description="the manifest's signature by a firmware key (vendor or release); "
            "none: the release key signs, where this installation holds it",
            max_length=4096,
            pattern=NO_NUL,
        ),
    ] = None,
) -> FirmwareRead:
    settings = runtime.settings
    received = await storage.receive_upload(
        file, media_dir=settings.media_dir, max_bytes=settings.firmware_max_bytes
    )
    try:
        async with runtime.writing() as session:
            image = await images.release(
                session,
                settings,
                version=version,
                model=model,
                notes=notes,
                upload=received,
                signature=signature,
                actor=actor.name,
                now=runtime.clock.now(),
            )
            return images.read(image)
    finally:
        received.path.unlink(missing_ok=True)  # moved into place, or refused


@router.post(
    "/api/v1/firmware/{version}/approve", dependencies=[allow(Action.FIRMWARE, From.PROVINCE)]
)
async def approve_firmware(version: str, runtime: RuntimeDep, actor: ActorDep) -> FirmwareRead:
    """The second person's approval of a release; rollouts may use it from now on."""
    async with runtime.writing() as session:
        image = await images.approve(session, version, actor=actor.name, now=runtime.clock.now())
        return images.read(image)


@router.get("/api/v1/firmware", dependencies=[allow(Action.READ, From.ANYWHERE)])
async def list_firmware(session: SessionDep) -> list[FirmwareRead]:
    return await images.listing(session)


@router.post(
    "/api/v1/rollouts",
    status_code=status.HTTP_201_CREATED,
    dependencies=[allow(Action.FIRMWARE, From.BODY_TARGETS)],
)
async def create_rollout(data: RolloutCreate, runtime: RuntimeDep, actor: ActorDep) -> RolloutRead:
    """Clusters are put in waves now; the first installs go out at the next tick."""
    async with runtime.writing() as session:
        rollout = await rollouts.create(
            session=session, data=data, actor=actor, now=runtime.clock.now()
        )
        rollout_id = rollout.id
    async with session_scope(runtime.sessions) as session:
        return await rollouts.read(session, rollout_id)


@router.get("/api/v1/rollouts/{rollout_id}", dependencies=[allow(Action.READ, From.ROLLOUT)])
async def read_rollout(
    rollout_id: IntId,
    session: SessionDep,
    clusters_limit: Annotated[int, Query(ge=0, le=100_000)] = 500,
) -> RolloutRead:
    return await rollouts.read(session, rollout_id, clusters_limit=clusters_limit)


TRANSITIONS = {"pause": rollouts.pause, "resume": rollouts.resume, "cancel": rollouts.cancel}


@router.post(
    "/api/v1/rollouts/{rollout_id}/{action}", dependencies=[allow(Action.FIRMWARE, From.ROLLOUT)]
)
async def move_rollout(
    rollout_id: IntId,
    action: Literal["pause", "resume", "cancel"],
    runtime: RuntimeDep,
    actor: ActorDep,
) -> RolloutRead:
    """pause: no further installs until resumed. resume: a paused rollout goes on; an
    aborted one too, its failures so far forgiven. cancel: no further installs. Installs
    under way are followed to their outcome whatever happens."""
    async with runtime.writing() as session:
        await TRANSITIONS[action](session, rollout_id, actor=actor, now=runtime.clock.now())
    async with session_scope(runtime.sessions) as session:
        return await rollouts.read(session, rollout_id)
