from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, UploadFile, status

from broadcast.context import SendingDep
from core.database import session_scope
from core.errors import Unauthenticated
from core.policy import Action
from core.schemas import ImportReport, Limit, Offset, Page
from core.uploads import read_csv_upload
from devices import broker_auth, service
from devices.models import Cluster
from devices.schemas import (
    BrokerCredentials,
    ClusterCreate,
    ClusterCreated,
    ClusterKind,
    ClusterRead,
    ClusterUpdate,
    OwnProvisioning,
    ProvisionedCluster,
)
from health.moving import register_writing
from web.deps import ActorDep, RuntimeDep, SessionDep, WriteSessionDep
from web.guard import allow, basic_credentials, guarded
from web.targets import From

router = APIRouter(prefix="/api/v1/clusters", tags=["clusters"])


def the_device_itself() -> Any:
    """A device's own request (its provisioning): HTTP Basic with the cluster code and
    broker password, the code the one in the path. No person is involved, so no role."""

    async def check(request: Request, runtime: RuntimeDep) -> Cluster:
        code, password = basic_credentials(request.headers.get("authorization", ""))
        if code != request.path_params.get("code"):
            raise Unauthenticated("a device asks for its own code only")
        async with session_scope(runtime.sessions) as session:
            return await service.authenticate_device(session, code, password)

    return Depends(guarded(check, "device"))


DeviceItself = Annotated[Cluster, the_device_itself()]


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    dependencies=[allow(Action.REGISTRY, From.BODY_TARGETS)],
)
async def create_cluster(
    data: ClusterCreate, session: WriteSessionDep, runtime: RuntimeDep
) -> ClusterCreated:
    """Registered with its own broker account (the password is in this answer only)."""
    cluster, password = await service.create(session=session, clock=runtime.clock, data=data)
    await broker_auth.sync(session, runtime.settings)
    return ClusterCreated(
        **cluster.model_dump(), mqtt=BrokerCredentials(username=cluster.code, password=password)
    )


@router.post(
    "/{code}/credentials",
    status_code=status.HTTP_201_CREATED,
    dependencies=[allow(Action.OPERATE, From.CLUSTER_PATH)],
)
async def issue_credentials(
    code: str, session: WriteSessionDep, runtime: RuntimeDep
) -> BrokerCredentials:
    """A new broker password (for a replaced controller, or a leaked one): the old one
    stops working when the broker re-reads its files, at once when they are managed."""
    password = await service.set_credentials(session=session, code=code, issue=True)
    assert password is not None
    await broker_auth.sync(session, runtime.settings)
    return BrokerCredentials(username=code, password=password)


@router.delete(
    "/{code}/credentials",
    status_code=status.HTTP_204_NO_CONTENT,
    dependencies=[allow(Action.OPERATE, From.CLUSTER_PATH)],
)
async def revoke_credentials(code: str, session: WriteSessionDep, runtime: RuntimeDep) -> None:
    """The cluster can no longer connect (a stolen controller)."""
    await service.set_credentials(session=session, code=code, issue=False)
    await broker_auth.sync(session, runtime.settings)


@router.get("", dependencies=[allow(Action.READ, From.QUERY_AREA)])
async def list_clusters(
    session: SessionDep,
    area: Annotated[str | None, Query(description="only clusters in this area's subtree")] = None,
    kind: ClusterKind | None = None,
    online: bool | None = None,
    limit: Limit = 100,
    offset: Offset = 0,
) -> Page[ClusterRead]:
    return await service.list_page(
        session=session, area=area, kind=kind, online=online, limit=limit, offset=offset
    )


@router.get("/provisioning", dependencies=[allow(Action.REGISTRY, From.PROVINCE)])
async def provisioning(
    session: SessionDep, runtime: RuntimeDep, area: str | None = None
) -> list[ProvisionedCluster]:
    """Codes and area topics of every cluster (for devices at install time and the simulator)."""
    return await service.provisioning(session=session, settings=runtime.settings, area=area)


@router.get("/{code}/provisioning")
async def own_provisioning(
    session: SessionDep, runtime: RuntimeDep, cluster: DeviceItself
) -> OwnProvisioning:
    """A device's own provisioning, fetched by the device with HTTP Basic (its code and
    broker password): also the broker's address and CA and the heartbeat interval
    (docs/protocol.md 10)."""
    return await service.own_provisioning(
        session=session, settings=runtime.settings, cluster=cluster
    )


@router.post("/import", dependencies=[allow(Action.REGISTRY, From.PROVINCE)])
async def import_clusters(file: UploadFile, runtime: SendingDep, actor: ActorDep) -> ImportReport:
    """A row that gives a cluster another area moves it as a PATCH does (set_areas)."""
    text = await read_csv_upload(file)
    # Under the write lock, as the area import (areas/router.py says why).
    async with register_writing(runtime, actor=actor.name) as session:
        report = await service.import_csv(session=session, clock=runtime.clock, text=text)
    async with session_scope(runtime.sessions) as session:
        await broker_auth.sync(session, runtime.settings)
    return report


@router.get("/{code}", dependencies=[allow(Action.READ, From.CLUSTER_PATH)])
async def read_cluster(code: str, session: SessionDep) -> ClusterRead:
    return await service.read(session=session, code=code)


@router.patch(
    "/{code}", dependencies=[allow(Action.REGISTRY, From.CLUSTER_PATH, From.BODY_TARGETS)]
)
async def update_cluster(
    code: str, data: ClusterUpdate, runtime: SendingDep, actor: ActorDep
) -> ClusterRead:
    """A move to another area tells the device its new areas (a signed set_areas, after
    the commit): it subscribes to them before it leaves the old (docs/protocol.md 4.6)."""
    async with register_writing(runtime, actor=actor.name) as session:
        return await service.update(session=session, code=code, data=data)


@router.delete(
    "/{code}",
    status_code=status.HTTP_204_NO_CONTENT,
    dependencies=[allow(Action.REGISTRY, From.CLUSTER_PATH)],
)
async def delete_cluster(code: str, session: WriteSessionDep, runtime: RuntimeDep) -> None:
    await service.delete(session=session, code=code)
    await broker_auth.sync(session, runtime.settings)  # its account goes with it
