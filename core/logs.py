"""Log lines as text for people at a terminal, or as one JSON object per line for a log
collector (Loki, Elasticsearch, journald): `BROADCAST_LOG_FORMAT=json`.

A JSON line carries the time (UTC, ISO 8601), level, logger, message, the process, the
exception with its traceback when there is one, and any `extra={...}` fields the call
gave, so a collector can filter on `cluster`, `broadcast` and the like without parsing
sentences.
"""

from __future__ import annotations

import json
import logging
import os
from datetime import UTC, datetime
from typing import Any

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
# Attributes every LogRecord has: anything else on a record came from `extra=`.
_STANDARD = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName"}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "pid": record.process,
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                line[key] = value
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False, default=str)


def configure(level: str | int = "INFO", fmt: str | None = None) -> None:
    """The root logger's one handler, in the chosen format (`BROADCAST_LOG_FORMAT` when
    `fmt` is not given); uvicorn's loggers are sent through it too."""
    chosen = (fmt or os.environ.get("BROADCAST_LOG_FORMAT") or "text").lower()
    if chosen not in ("text", "json"):
        raise ValueError(f"BROADCAST_LOG_FORMAT must be text or json, not {chosen!r}")
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter() if chosen == "json" else logging.Formatter(TEXT_FORMAT))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logger = logging.getLogger(name)
        logger.handlers[:] = []
        logger.propagate = True
