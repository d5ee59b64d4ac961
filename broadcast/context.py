"""What sending needs beyond the core context: the dispatcher that publishes, and the
media ingest (typed text is spoken before it is sent). CAP, the self-test, the
operations and the broadcast routes ask for this; app.runtime.Runtime provides it."""

from __future__ import annotations

from typing import Annotated, Protocol

from fastapi import Depends

from broadcast.dispatch import Dispatcher
from core.context import Context
from media.service import IngestContext
from web.deps import get_runtime


class Sending(Context, Protocol):
    def require_dispatcher(self) -> Dispatcher: ...

    def ingest_context(self) -> IngestContext: ...


SendingDep = Annotated[Sending, Depends(get_runtime)]
