"""Serving media to clusters: signed, cluster-bound, expiring URLs with Range and ETag."""

from __future__ import annotations

import time
from pathlib import Path

from media import storage
from tests.broadcast.helpers import upload
from tests.factories import small_province
from tests.support import Stack
from wire import media_auth


def device_url(
    stack: Stack,
    sha256: str,
    scope: str,
    *,
    code: str,
    areas: tuple[str, ...],
    claimed_areas: tuple[str, ...] | None = None,
    expires: int | None = None,
) -> str:
    """The path a command's URL would carry, plus the proof the device adds (made with the
    key for its real areas, whatever areas it claims)."""
    settings = stack.settings
    url = settings.media_url(sha256, scope, expires or int(time.time()) + 60)
    key = media_auth.device_key(settings.media_signing_key, code, "/".join(areas))
    signed = media_auth.device_url(url, code=code, areas=claimed_areas or areas, key=key)
    return "/" + signed.split("://", 1)[1].split("/", 1)[1]


async def test_download_supports_etag_and_range(stack: Stack, tone_mp3: Path) -> None:
    specs = (await small_province(stack)).specs
    spec = specs[0]
    media = await upload(stack, tone_mp3)
    data = storage.media_path(stack.settings.media_dir, media["sha256"]).read_bytes()
    url = device_url(
        stack,
        media["sha256"],
        media_auth.cluster_scope(spec.code),
        code=spec.code,
        areas=spec.areas,
    )
    full = await stack.client.get(url)
    assert full.status_code == 200 and full.content == data
    assert full.headers["etag"] == f'"{media["sha256"]}"'
    assert "immutable" in full.headers["cache-control"]

    cached = await stack.client.get(url, headers={"if-none-match": full.headers["etag"]})
    assert cached.status_code == 304 and cached.content == b""

    part = await stack.client.get(url, headers={"range": "bytes=100-199"})
    assert part.status_code == 206 and part.content == data[100:200]

    missing = await stack.client.get(url.replace(media["sha256"], "0" * 64))
    assert missing.status_code in (403, 404), "another file: the grant does not open it"
    assert (await stack.client.get("/media/../../etc/passwd")).status_code == 404


async def test_only_the_addressed_cluster_may_fetch_until_expiry(
    stack: Stack, tone_mp3: Path, tone_wav: Path
) -> None:
    specs = (await small_province(stack)).specs
    media = await upload(stack, tone_mp3)
    other = await upload(stack, tone_wav)
    sha = media["sha256"]
    speaker = next(s for s in specs if s.kind == "speaker_cluster")
    commune = speaker.areas[-1]
    outsider = next(s for s in specs if commune not in s.areas)
    neighbour = next(s for s in specs if commune in s.areas and s.code != speaker.code)

    def fetch_as(spec_code: str, areas: tuple[str, ...], scope: str, **kw: object) -> str:
        return device_url(stack, sha, scope, code=spec_code, areas=areas, **kw)  # type: ignore[arg-type]

    mine = media_auth.cluster_scope(speaker.code)
    area = media_auth.area_scope(commune)
    allowed = [
        fetch_as(speaker.code, speaker.areas, mine),
        fetch_as(speaker.code, speaker.areas, area),
        fetch_as(neighbour.code, neighbour.areas, area),
    ]
    for url in allowed:
        assert (await stack.client.get(url)).status_code == 200, url

    refused = {
        "unsigned": f"/media/{sha}",
        "another cluster's grant": fetch_as(neighbour.code, neighbour.areas, mine),
        "outside the area": fetch_as(outsider.code, outsider.areas, area),
        "expired": fetch_as(speaker.code, speaker.areas, mine, expires=int(time.time()) - 1),
        "claims an area it is not in": fetch_as(
            outsider.code, outsider.areas, area, claimed_areas=(*outsider.areas[:-1], commune)
        ),
        "grant for another file": fetch_as(speaker.code, speaker.areas, mine).replace(
            sha, other["sha256"]
        ),
    }
    for case, url in refused.items():
        response = await stack.client.get(url)
        assert response.status_code == 403, f"{case}: {response.status_code}"
        assert response.json()["error"].startswith("refused"), case
