"""Releasing a firmware image: bytes into the content-addressed media store, a manifest
signed by a firmware key (the vendor's, or the province's release key, never the key
that signs commands), and a record; then a second person approves the release before
any rollout may use it (issue 19: one technician could put any bytes on every cluster)."""

from __future__ import annotations

import asyncio
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from core.errors import Conflict, Forbidden, InvalidInput, NotFound
from core.settings import Settings
from firmware.models import FirmwareImage
from firmware.schemas import FirmwareRead
from media import storage
from wire.protocol import FirmwareManifest
from wire.signing import SignatureError, TrustStore


class FirmwareNotFound(NotFound):
    def __init__(self, version: str) -> None:
        super().__init__(f"firmware {version!r} not found", detail={"firmware": version})


def manifest_fields(version: str, sha256: str, size: int, model: str | None) -> dict[str, object]:
    """What the manifest signature covers, exactly as the command carries it (absent
    members are left out, as on the wire)."""
    fields: dict[str, object] = {"version": version, "sha256": sha256, "size": size}
    if model:
        fields["model"] = model
    return fields


def manifest(image: FirmwareImage) -> FirmwareManifest:
    fields = manifest_fields(image.version, image.sha256, image.size, image.model)
    return FirmwareManifest.model_validate({**fields, "sig": image.signature})


async def release(
    session: AsyncSession,
    settings: Settings,
    *,
    version: str,
    model: str | None,
    notes: str,
    upload: storage.Received,
    signature: str | None,
    actor: str,
    now: datetime,
) -> FirmwareImage:
    """Store and record an image, not yet approved. A signature must verify against a
    firmware key the clusters trust (refused here, not by sixteen hundred clusters later);
    without one, the release key signs the manifest, if this installation holds it."""
    version = version.strip()
    if not version or len(version) > 64:
        raise InvalidInput("version must be 1 to 64 characters", detail={"field": "version"})
    if await session.get(FirmwareImage, version) is not None:
        raise Conflict(
            f"firmware {version!r} already exists: a version names one image forever",
            detail={"field": "version"},
        )
    fields = manifest_fields(version, upload.sha256, upload.size, model or None)
    if signature:
        try:
            TrustStore(settings.device_firmware_keys).check({**fields, "sig": signature})
        except SignatureError as exc:
            raise InvalidInput(
                f"signature refused: {exc.problem.value} (it must be by a firmware key the "
                "clusters trust, over the manifest's canonical JSON; docs/protocol.md 4.7)",
                detail={"field": "signature"},
            ) from None
    elif settings.firmware_signer is not None:
        signature = str(settings.firmware_signer.sign(fields)["sig"])
    else:
        raise InvalidInput(
            "give the manifest's signature: this installation holds no firmware release key "
            "(FIRMWARE_SIGNING_KEY), and the command key never signs firmware",
            detail={"field": "signature"},
        )
    await asyncio.to_thread(
        storage.move_into_place,
        upload.path,
        storage.media_path(settings.media_dir, upload.sha256),
    )
    image = FirmwareImage(
        version=version,
        sha256=upload.sha256,
        size=upload.size,
        model=model or None,
        signature=signature,
        notes=notes,
        uploaded_by=actor,
        uploaded_at=now,
    )
    session.add(image)
    await session.flush()
    return image


async def approve(
    session: AsyncSession, version: str, *, actor: str, now: datetime
) -> FirmwareImage:
    """A second person's approval: the one who uploaded an image may not approve it."""
    image = await get(session, version)
    if image.approved_by is not None:
        raise Conflict(
            f"firmware {version!r} was approved by {image.approved_by}",
            detail={"firmware": version},
        )
    if image.uploaded_by == actor:
        raise Forbidden(
            f"{actor} uploaded firmware {version!r}; another person must approve it",
            detail={"missing": "author", "firmware": version},
        )
    image.approved_by, image.approved_at = actor, now
    await session.flush()
    return image


def check_approved(image: FirmwareImage) -> None:
    if image.approved_by is None:
        raise Conflict(
            f"firmware {image.version!r} is not approved: a second person approves a release "
            "before any rollout (POST /api/v1/firmware/{version}/approve)",
            detail={"field": "firmware", "firmware": image.version},
        )


def read(image: FirmwareImage) -> FirmwareRead:
    return FirmwareRead(
        version=image.version,
        sha256=image.sha256,
        size=image.size,
        model=image.model,
        key_id=image.signature.partition(".")[0],
        notes=image.notes,
        uploaded_by=image.uploaded_by,
        uploaded_at=image.uploaded_at,
        approved_by=image.approved_by,
        approved_at=image.approved_at,
    )


async def listing(session: AsyncSession) -> list[FirmwareRead]:
    rows = await session.scalars(select(FirmwareImage).order_by(FirmwareImage.uploaded_at.desc()))
    return [read(image) for image in rows.all()]


async def get(session: AsyncSession, version: str) -> FirmwareImage:
    image = await session.get(FirmwareImage, version)
    if image is None:
        raise FirmwareNotFound(version)
    return image
