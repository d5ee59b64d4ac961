"""Media URLs only the addressed cluster can use, until the broadcast expires.

Pure module (standard library only): the control plane signs, the media server verifies,
a device adds its proof; all three import it. docs/protocol.md section 4.2 is the prose.

- The command's media URL carries a **grant**: HMAC(server key, sha256 | scope | expiry),
  where the scope is whom the command was published to (`c:{cluster}` or `a:{area}`). It
  is bound to one file: it opens nothing else.
- Each device holds a **device key** from provisioning: HMAC(server key, code | its area
  path). It appends its code, area path and HMAC(device key, grant) to the URL. The media
  server re-derives the key, so it needs no database, and a device that is not within the
  scope (or does not hold that key) is refused.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass
from urllib.parse import parse_qs, urlencode

GRANT_CONTEXT = b"loa/media-grant/v1|"
DEVICE_CONTEXT = b"loa/device-media-key/v1|"


def _mac(key: bytes, message: str) -> str:
    digest = hmac.new(key, message.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest[:24]).decode().rstrip("=")


def server_key(secret: str) -> bytes:
    """The media signing key, derived so the raw secret signs nothing directly."""
    return hmac.new(secret.encode(), b"loa/media/v1", hashlib.sha256).digest()


def cluster_scope(code: str) -> str:
    return f"c:{code}"


def area_scope(area: str) -> str:
    return f"a:{area}"


def live_resource(broadcast_id: str) -> str:
    """What a live stream's grant is bound to, in place of a file's sha256: the session."""
    return f"live:{broadcast_id}"


def grant(key: bytes, sha256: str, scope: str, expires: int) -> str:
    return _mac(key, f"{GRANT_CONTEXT.decode()}{sha256}|{scope}|{expires}")


def device_key(key: bytes, code: str, area_path: str) -> str:
    """Given to the device at provisioning; changes if the device moves to another area."""
    return _mac(key, f"{DEVICE_CONTEXT.decode()}{code}|{area_path}")


def signed_query(key: bytes, sha256: str, scope: str, expires: int) -> str:
    """The query string the control plane puts on a command's media URL."""
    return urlencode({"s": scope, "e": expires, "g": grant(key, sha256, scope, expires)})


def device_url(url: str, *, code: str, areas: tuple[str, ...], key: str) -> str:
    """What a device fetches: the command's URL plus who it is and its proof."""
    query = parse_qs(url.partition("?")[2])
    proof = _mac(key.encode(), query.get("g", [""])[0])
    separator = "&" if "?" in url else "?"
    return url + separator + urlencode({"c": code, "p": "/".join(areas), "d": proof})


@dataclass(frozen=True)
class Refusal:
    reason: str


def verify(key: bytes, sha256: str, query: str, now: float) -> Refusal | None:
    """None if the request may have the file, else why not."""
    params = {k: v[0] for k, v in parse_qs(query).items()}
    scope, expires, given = params.get("s", ""), params.get("e", ""), params.get("g", "")
    code, path, proof = params.get("c", ""), params.get("p", ""), params.get("d", "")
    if not (scope and expires and given):
        return Refusal("media URLs must be signed")
    if not (code and path and proof):
        return Refusal("the device must identify itself (c, p, d)")
    try:
        expires_at = int(expires)
    except ValueError:
        return Refusal("bad expiry")
    if not hmac.compare_digest(given, grant(key, sha256, scope, expires_at)):
        return Refusal("grant does not match this file")
    if now >= expires_at:
        return Refusal("grant expired")
    expected = _mac(device_key(key, code, path).encode(), given)
    if not hmac.compare_digest(proof, expected):
        return Refusal("device proof does not match")
    kind, _, whom = scope.partition(":")
    if kind == "c" and whom == code:
        return None
    if kind == "a" and whom in path.split("/"):
        return None
    return Refusal(f"media was not sent to {code}")
