from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, UploadFile, status

from app.deps import RuntimeDep, SessionDep
from core.schemas import ImportReport, Limit, Offset, Page
from core.uploads import read_csv_upload
from devices import service
from devices.schemas import (
    ClusterCreate,
    ClusterKind,
    ClusterRead,
    ClusterUpdate,
    ProvisionedCluster,
)

router = APIRouter(prefix="/api/v1/clusters", tags=["clusters"])


@router.post("", status_code=status.HTTP_201_CREATED)
async def create_cluster(
    data: ClusterCreate, session: SessionDep, runtime: RuntimeDep
) -> ClusterRead:
    return await service.create(session=session, clock=runtime.clock, data=data)


@router.get("")
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


@router.get("/provisioning")
async def provisioning(
    session: SessionDep, runtime: RuntimeDep, area: str | None = None
) -> list[ProvisionedCluster]:
    """Codes and area topics of every cluster (for devices at install time and the simulator)."""
    return await service.provisioning(session=session, settings=runtime.settings, area=area)


@router.post("/import")
async def import_clusters(
    file: UploadFile, session: SessionDep, runtime: RuntimeDep
) -> ImportReport:
    text = await read_csv_upload(file)
    return await service.import_csv(session=session, clock=runtime.clock, text=text)


@router.get("/{code}")
async def read_cluster(code: str, session: SessionDep) -> ClusterRead:
    return await service.read(session=session, code=code)


@router.patch("/{code}")
async def update_cluster(code: str, data: ClusterUpdate, session: SessionDep) -> ClusterRead:
    return await service.update(session=session, code=code, data=data)


@router.delete("/{code}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_cluster(code: str, session: SessionDep) -> None:
    await service.delete(session=session, code=code)
