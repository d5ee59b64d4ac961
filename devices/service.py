"""Cluster registry logic: CRUD, CSV import, provisioning. Services flush, never commit."""

from __future__ import annotations

import csv
import io

from pydantic import ValidationError
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from areas import repository as area_repository
from areas import service as area_service
from areas.models import Area
from core.clock import Clock
from core.errors import Conflict, InvalidInput, NotFound, Unauthenticated
from core.schemas import ImportReport, ImportRowError, Page
from core.settings import Settings
from devices import broker_auth, moves, repository
from devices.models import Cluster
from devices.schemas import (
    ClusterCreate,
    ClusterRead,
    ClusterUpdate,
    DeviceBroker,
    OwnProvisioning,
    ProvisionedCluster,
)
from wire import media_auth


class ClusterNotFound(NotFound):
    def __init__(self, code: str) -> None:
        super().__init__(f"cluster {code!r} not found", detail={"cluster": code})


def to_read(cluster: Cluster, area_code: str) -> ClusterRead:
    return ClusterRead.model_validate(
        {
            **{c: getattr(cluster, c) for c in ClusterRead.model_fields if c != "area_code"},
            "area_code": area_code,
        }
    )


async def get(*, session: AsyncSession, code: str) -> Cluster:
    cluster = await repository.get_by_code(session, code)
    if cluster is None:
        raise ClusterNotFound(code)
    return cluster


async def read(*, session: AsyncSession, code: str) -> ClusterRead:
    cluster = await get(session=session, code=code)
    area = await area_repository.get_by_id(session, cluster.area_id)
    return to_read(cluster, area.code)


async def create(
    *, session: AsyncSession, clock: Clock, data: ClusterCreate
) -> tuple[ClusterRead, str]:
    """The new cluster and its broker password (shown once: only a hash is kept)."""
    if await repository.get_by_code(session, data.code) is not None:
        raise Conflict(f"cluster {data.code!r} already exists", detail={"cluster": data.code})
    area = await area_service.get(session=session, code=data.area_code)
    password = broker_auth.new_password()
    cluster = Cluster(
        **data.model_dump(exclude={"area_code"}),
        area_id=area.id,
        created_at=clock.now(),
        online=False,
        mqtt_password_hash=broker_auth.mosquitto_hash(password),
    )
    session.add(cluster)
    await session.flush()
    return to_read(cluster, area.code), password


async def set_credentials(*, session: AsyncSession, code: str, issue: bool) -> str | None:
    """A new broker password for the cluster (the old one stops working at the broker's
    next reload), or none at all (revoked). Returns the new password."""
    cluster = await get(session=session, code=code)
    password = broker_auth.new_password() if issue else None
    cluster.mqtt_password_hash = broker_auth.mosquitto_hash(password) if password else None
    await session.flush()
    return password


async def update(*, session: AsyncSession, code: str, data: ClusterUpdate) -> ClusterRead:
    cluster = await get(session=session, code=code)
    changes = data.model_dump(exclude_unset=True, exclude={"area_code"})
    for field, value in changes.items():
        setattr(cluster, field, value)
    if data.area_code is not None:
        area = await area_service.get(session=session, code=data.area_code)
        await moves.move_clusters(session, [(cluster, area.id)])
    else:
        area = await area_repository.get_by_id(session, cluster.area_id)
    await session.flush()
    return to_read(cluster, area.code)


async def delete(*, session: AsyncSession, code: str) -> None:
    cluster = await get(session=session, code=code)
    await session.delete(cluster)
    try:
        await session.flush()
    except IntegrityError:
        raise Conflict(
            f"cluster {code!r} has broadcast history and cannot be deleted",
            detail={"cluster": code},
        ) from None


async def list_page(
    *,
    session: AsyncSession,
    area: str | None,
    kind: str | None,
    online: bool | None,
    limit: int,
    offset: int,
) -> Page[ClusterRead]:
    under = await area_service.get(session=session, code=area) if area else None
    rows, total = await repository.list_page(
        session, under=under, kind=kind, online=online, limit=limit, offset=offset
    )
    return Page(
        items=[to_read(c, area_code) for c, area_code in rows],
        total=total,
        limit=limit,
        offset=offset,
    )


async def provisioning(
    *, session: AsyncSession, settings: Settings, area: str | None
) -> list[ProvisionedCluster]:
    under = await area_service.get(session=session, code=area) if area else None
    return [
        _provisioned(settings, code, kind, path, model)
        for code, kind, path, model in await repository.provisioning(session, under)
    ]


async def authenticate_device(session: AsyncSession, code: str, password: str) -> Cluster:
    """The cluster whose broker account this is; an unknown code and a wrong password get
    the same answer."""
    cluster = await repository.get_by_code(session, code)
    hashed = cluster.mqtt_password_hash if cluster is not None else None
    if cluster is None or hashed is None or not broker_auth.matches(password, hashed):
        raise Unauthenticated("a device signs in with its own broker account")
    return cluster


async def own_provisioning(
    *, session: AsyncSession, settings: Settings, cluster: Cluster
) -> OwnProvisioning:
    """A device's provisioning for the device itself: also where to connect and how often
    to speak, which the installer's listing leaves out."""
    area = await session.get(Area, cluster.area_id)
    assert area is not None  # a cluster's area cannot be deleted under it
    own = _provisioned(settings, cluster.code, cluster.kind, area.path, cluster.model)
    ca = settings.mqtt_tls_ca
    return OwnProvisioning(
        **own.model_dump(),
        broker=DeviceBroker(
            url=settings.broker_url_for_devices,
            ca_pem=ca.read_text(encoding="ascii") if ca is not None else None,
        ),
        heartbeat_s=settings.heartbeat_s,
        offline_after_missed=settings.offline_after_missed,
    )


def _provisioned(
    settings: Settings, code: str, kind: str, path: str, model: str | None
) -> ProvisionedCluster:
    areas = [p for p in path.split("/") if p]
    return ProvisionedCluster.model_validate(
        {
            "code": code,
            "kind": kind,
            "areas": areas,
            "profile": settings.profile_for_model(model),
            "media_key": media_auth.device_key(settings.media_signing_key, code, "/".join(areas)),
            "trusted_keys": settings.device_trusted_keys,
            "firmware_keys": settings.device_firmware_keys,
            "model": model,
        }
    )


CLUSTER_CSV_COLUMNS = tuple(ClusterCreate.model_fields)


async def import_csv(*, session: AsyncSession, clock: Clock, text: str) -> ImportReport:
    """Create or update clusters from CSV, reporting each bad row with its line number."""
    report = ImportReport()
    reader = csv.DictReader(io.StringIO(text, newline=""))  # quoted line breaks kept
    missing = [c for c in ("code", "name", "area_code") if c not in (reader.fieldnames or [])]
    if missing:
        raise InvalidInput(
            f"CSV header lacks column(s) {', '.join(missing)}", detail={"field": missing[0]}
        )
    areas: dict[str, Area | None] = {}
    added: dict[str, Cluster] = {}  # rows earlier in this file, not yet flushed
    for line_no, row in enumerate(reader, start=2):
        values = {k: row[k].strip() for k in CLUSTER_CSV_COLUMNS if row.get(k, "").strip()}
        try:
            data = ClusterCreate.model_validate(values)
        except ValidationError as exc:
            err = exc.errors()[0]
            field = ".".join(str(p) for p in err["loc"])
            report.errors.append(ImportRowError(row=line_no, field=field, error=err["msg"]))
            continue
        if data.area_code not in areas:
            areas[data.area_code] = await area_repository.get_by_code(session, data.area_code)
        area = areas[data.area_code]
        if area is None:
            report.errors.append(
                ImportRowError(
                    row=line_no, field="area_code", error=f"area {data.area_code!r} not found"
                )
            )
            continue
        existing = added.get(data.code) or await repository.get_by_code(session, data.code)
        if existing is None:
            added[data.code] = Cluster(
                **data.model_dump(exclude={"area_code"}),
                area_id=area.id,
                created_at=clock.now(),
                online=False,
            )
            session.add(added[data.code])
            report.created += 1
        else:
            for field, value in data.model_dump(exclude={"area_code", "code"}).items():
                setattr(existing, field, value)
            await moves.move_clusters(session, [(existing, area.id)])
            report.updated += 1
    await session.flush()
    return report
