"""Releasing a firmware image: bytes into the content-addressed media store, a manifest
signed with the control plane's key (or by the vendor's key, if it is one the clusters
trust), and a record."""

from __future__ import annotations

import asyncio
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from core.errors import Conflict, InvalidInput, NotFound
from core.settings import Settings
from devices.protocol import FirmwareManifest
from devices.signing import SignatureError, TrustStore
from firmware.models import FirmwareImage
from firmware.schemas import FirmwareRead
from media import storage


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
    """Store and record an image. A vendor signature must verify against a key the
    clusters trust (refused here, not by sixteen hundred clusters later); without one, the
    control plane signs the manifest."""
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
            TrustStore(settings.device_trusted_keys).check({**fields, "sig": signature})
        except SignatureError as exc:
            raise InvalidInput(
                f"signature refused: {exc.problem.value} (it must be by a key the clusters "
                "trust, over the manifest's canonical JSON; docs/protocol.md 4.7)",
                detail={"field": "signature"},
            ) from None
    else:
        signature = str(settings.signer.sign(fields)["sig"])
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
    )


async def listing(session: AsyncSession) -> list[FirmwareRead]:
    rows = await session.scalars(select(FirmwareImage).order_by(FirmwareImage.uploaded_at.desc()))
    return [read(image) for image in rows.all()]


async def get(session: AsyncSession, version: str) -> FirmwareImage:
    image = await session.get(FirmwareImage, version)
    if image is None:
        raise FirmwareNotFound(version)
    return image
