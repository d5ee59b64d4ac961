"""The official conversion, from the vietnam-provinces package (data of 2026-09-20):
which province and which communes or wards an old unit became. Looked up by code, never
by name; a commune split between several wards has each of them as a successor."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from vietnam_provinces import Province, Ward


@dataclass(frozen=True)
class Unit:
    code: str
    name: str
    province: str = ""  # a commune's or ward's province


class Official(Protocol):
    def province_after(self, code: str) -> Unit | None: ...

    def communes_after(self, code: str) -> list[Unit]: ...


class VietnamProvinces:
    """The conversion effective 2025-07-01 (Resolutions 202/2025/QH15 and those of the
    Standing Committee on each province's communes), as the package publishes it."""

    def province_after(self, code: str) -> Unit | None:
        if not code.isdigit():
            return None
        found = Province.search_from_legacy(code=int(code))
        if not found:
            return None
        province = found[0].province
        return Unit(str(int(province.code)), province.name)

    def communes_after(self, code: str) -> list[Unit]:
        if not code.isdigit():
            return []
        return [
            Unit(str(int(s.ward.code)), s.ward.name, str(int(s.ward.province_code)))
            for s in Ward.search_from_legacy(code=int(code))
        ]
