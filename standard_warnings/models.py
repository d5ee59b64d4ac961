from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from core.database import Base, UTCDateTime


class StandardWarning(Base):
    """One warning of the province's library: every cluster's schedule document lists it,
    so each holds the clip before an emergency names it (docs/protocol.md 11.1)."""

    __tablename__ = "standard_warnings"

    # The id the self-test reports and an emergency names ("flood-evacuate"): a code, as
    # wire.protocol.HeldWarning takes it.
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    title: Mapped[str] = mapped_column(String(300))
    # The default rendition; its alternates go to devices of other profiles. RESTRICT: a
    # clip every cluster holds for an emergency cannot vanish under the library.
    media_sha256: Mapped[str] = mapped_column(ForeignKey("media_files.sha256", ondelete="RESTRICT"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_by: Mapped[str] = mapped_column(String(100))
