"""Where a fleet learns which clusters to be: the control plane's provisioning list."""

from __future__ import annotations

import ssl

import httpx

from simulator.spec import DeviceSpec


def specs_from_json(items: list[dict[str, object]]) -> list[DeviceSpec]:
    return [
        DeviceSpec(
            code=str(i["code"]),
            kind=str(i["kind"]),
            areas=tuple(i["areas"]),  # type: ignore[arg-type]
            profile=str(i.get("profile") or "") or None,
            media_key=str(i.get("media_key") or ""),
            trusted_keys=tuple(i.get("trusted_keys") or ()),  # type: ignore[arg-type]
            firmware_keys=tuple(i.get("firmware_keys") or ()),  # type: ignore[arg-type]
            model=str(i.get("model") or "") or None,
        )
        for i in items
    ]


async def fetch_specs(
    api_url: str,
    *,
    area: str | None = None,
    verify: ssl.SSLContext | bool = True,
    headers: dict[str, str] | None = None,
) -> list[DeviceSpec]:
    """The register's provisioning data (an administrator's: `headers` sign in)."""
    params = {"area": area} if area else {}
    async with httpx.AsyncClient(
        base_url=api_url, timeout=60, verify=verify, headers=headers
    ) as client:
        response = await client.get("/api/v1/clusters/provisioning", params=params)
        response.raise_for_status()
        return specs_from_json(response.json())
