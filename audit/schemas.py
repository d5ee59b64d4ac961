from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict


class AuditRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    at: datetime
    actor: str
    role: str
    area: str | None
    address: str
    action: str
    target: str
    outcome: str
    status: int | None
    detail: dict[str, Any]
