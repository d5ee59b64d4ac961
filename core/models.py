"""Imports every domain's ORM models so the metadata is complete (Alembic, tests)."""

from __future__ import annotations


def import_all_models() -> None:
    import accounts.models  # noqa: F401
    import areas.models  # noqa: F401
    import audit.models  # noqa: F401
    import broadcast.models  # noqa: F401
    import bulletins.models  # noqa: F401
    import cap.models  # noqa: F401
    import devices.models  # noqa: F401
    import firmware.models  # noqa: F401
    import health.models  # noqa: F401
    import live.models  # noqa: F401
    import media.models  # noqa: F401
    import schedules.models  # noqa: F401
    import standard_warnings.models  # noqa: F401
