"""Vietnamese by default, English as an option: gettext catalogues (Babel), Vietnamese
dates and numbers.

Message ids are English; `locale/vi/LC_MESSAGES/messages.po` translates them. The
catalogue is compiled in memory when the process starts, so there is no build step and
no compiled file to forget (`pybabel extract -F babel.cfg` refreshes the template).
"""

from __future__ import annotations

import io
from datetime import date, datetime
from functools import cache
from pathlib import Path
from zoneinfo import ZoneInfo

from babel.dates import format_date, format_datetime
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.numbers import format_decimal
from babel.support import NullTranslations, Translations

LOCALES = ("vi", "en")
DEFAULT = "vi"
HERE = Path(__file__).resolve().parent


@cache
def translations(locale: str) -> NullTranslations:
    po = HERE / "locale" / locale / "LC_MESSAGES" / "messages.po"
    if not po.exists():
        return NullTranslations()  # English: the message ids themselves
    with po.open("rb") as f:
        catalog = read_po(f, locale=locale)
    buffer = io.BytesIO()
    write_mo(buffer, catalog)
    buffer.seek(0)
    return Translations(buffer)


def choose(query: str | None, cookie: str | None) -> str:
    for candidate in (query, cookie):
        if candidate in LOCALES:
            return candidate
    return DEFAULT


class Formats:
    """Numbers and times the way the reader writes them (1.639 cụm in Vietnamese)."""

    def __init__(self, locale: str, zone: str = "Asia/Ho_Chi_Minh") -> None:
        self.locale = "vi_VN" if locale == "vi" else "en_GB"
        self.zone = ZoneInfo(zone)

    def number(self, value: float | int) -> str:
        return format_decimal(value, locale=self.locale)

    def day(self, value: date) -> str:
        return format_date(value, "EEEE dd/MM/yyyy", locale=self.locale).capitalize()

    def date(self, value: date) -> str:
        return format_date(value, "dd/MM/yyyy", locale=self.locale)

    def when(self, value: datetime | None) -> str:
        if value is None:
            return "—"
        return format_datetime(
            value.astimezone(self.zone), "HH:mm:ss dd/MM/yyyy", locale=self.locale
        )
