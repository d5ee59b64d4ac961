"""What the media routes need beyond the core context: the ingest (uploads, speech) and
the counters of refused files. app.runtime.Runtime provides it."""

from __future__ import annotations

from typing import Annotated, Protocol

from fastapi import Depends

from core.context import Context
from core.ingest_stats import IngestStats
from media.service import IngestContext
from web.deps import get_runtime


class Ingesting(Context, Protocol):
    stats: IngestStats

    def ingest_context(self) -> IngestContext: ...


IngestingDep = Annotated[Ingesting, Depends(get_runtime)]
