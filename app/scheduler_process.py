"""`broadcast scheduler`: the background jobs as their own process (production). It was
`python -m scheduler`; the process is composed here, in the application, so the
`scheduler` package (leader lock, job runner) imports nothing above it.

Run as many as you like: only the holder of the PostgreSQL advisory lock works, and a
standby takes over within one tick of the leader's connection dropping. Set
BROADCAST_RUN_JOBS_IN_API=false on the API replicas when this process runs.
"""

from __future__ import annotations

import asyncio
import logging
import signal

from app.runtime import Runtime
from core import heap
from core.logs import configure
from core.settings import get_settings


async def main() -> None:
    runtime = Runtime.build(get_settings())
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await runtime.start(run_jobs=True, consume=False)
    heap.settle()
    try:
        await stop.wait()
    finally:
        await runtime.stop()


def run() -> None:
    configure(logging.INFO)
    asyncio.run(main())
