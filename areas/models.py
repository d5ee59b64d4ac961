from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import JSON, Date, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from core.database import Base, UTCDateTime


class Area(Base):
    """A node of the administrative tree, keyed by its official code.

    `path` is the materialised chain of codes from the root ("/70/688/25216/"), so a
    subtree is one indexed prefix match on either backend, at any depth.
    """

    __tablename__ = "areas"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    level: Mapped[str] = mapped_column(String(32))  # province, district, commune, hamlet...
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("areas.id", ondelete="RESTRICT"))
    path: Mapped[str] = mapped_column(String(1000))
    depth: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    # Ceased to exist in a reorganisation (reorganisation/): kept, with the codes of the
    # areas that took it over, so every record made in it still finds it.
    dissolved_on: Mapped[date | None] = mapped_column(Date)
    successors: Mapped[list[str] | None] = mapped_column(JSON)
    # The day it took its present form in a reorganisation (None: as first registered).
    since: Mapped[date | None] = mapped_column(Date)

    __table_args__ = (Index("ix_areas_path", "path"), Index("ix_areas_parent_id", "parent_id"))


class AreaVersion(Base):
    """What an area that continues under its official code was before a reorganisation
    renamed or moved it (old Phường Tân Phú, 25195, is Phường Bình Phước, 25195, since 1
    July 2025): its name, level and place in the tree until that day."""

    __tablename__ = "area_versions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    area_id: Mapped[int] = mapped_column(ForeignKey("areas.id", ondelete="RESTRICT"), index=True)
    code: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(200))
    level: Mapped[str] = mapped_column(String(32))
    path: Mapped[str] = mapped_column(String(1000))
    until: Mapped[date] = mapped_column(Date)  # the last day it was so
    ended_at: Mapped[datetime] = mapped_column(UTCDateTime())  # that day's end, local time
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime())
