"""Imports every domain's ORM models so the metadata is complete (Alembic, tests)."""

from __future__ import annotations


def import_all_models() -> None:
    import media.models  # noqa: F401
