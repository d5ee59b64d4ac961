"""The complete example messages of docs/protocol.md, Appendix A, made by the
implementation itself (issue 20: a vendor has only the document, so its examples must be
exact and must not drift). tests/devices/test_protocol_examples.py checks that the
document holds exactly what `appendix()` makes, and that each example parses and its
signature verifies; `python -m devices.examples` rewrites the appendix after a change.

Every key here is an example key derived from a public phrase: it signs nothing real and
no installation trusts it (a development install derives its keys from its own secret).
"""

from __future__ import annotations

import hashlib
import json
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from wire import media_auth, protocol, signing

EXAMPLE_PHRASE = "EXAMPLE ONLY - this key is public and signs nothing real"
SIGNER = signing.SigningKey.from_seed(hashlib.sha256(EXAMPLE_PHRASE.encode()).digest())
MEDIA_SERVER_KEY = media_auth.server_key(EXAMPLE_PHRASE)
CODE, AREAS = "25195-01", ("70", "689", "25195")
AT = datetime(2026, 11, 23, 15, 4, 5, 123000, tzinfo=UTC)
SHA = hashlib.sha256(b"example clip").hexdigest()
BROADCAST = "6f1c2b7e-4d0a-4c3e-9a51-0b7c6a1e5c1d"
MEDIA_BASE = "https://media.example.vn/media"
BEGIN, END = "<!-- examples: begin -->", "<!-- examples: end -->"
DOC = Path(__file__).resolve().parent.parent / "docs" / "protocol.md"


def media_key() -> str:
    """The `media_key` provisioning gives the example device (section 10)."""
    return media_auth.device_key(MEDIA_SERVER_KEY, CODE, "/".join(AREAS))


def _operation(
    command_id: str,
    operation: str,
    kind: str,
    op: dict[str, Any],
    valid: timedelta = timedelta(minutes=10),
) -> protocol.Command:
    """A device operation to the example device (section 4.6)."""
    return protocol.Command.model_validate(
        {
            "id": command_id,
            "kind": kind,
            "broadcast": operation,
            "class": "priority",
            "level": "province",
            "issued_at": AT,
            "expires_at": AT + valid,
            "target": {"cluster": CODE},
            "op": op,
        }
    )


def _key(areas: list[str]) -> str:
    return media_auth.device_key(MEDIA_SERVER_KEY, CODE, "/".join(areas))


def _media(scope: str, expires: datetime) -> protocol.MediaRef:
    query = media_auth.signed_query(MEDIA_SERVER_KEY, SHA, scope, int(expires.timestamp()))
    return protocol.MediaRef(
        url=f"{MEDIA_BASE}/{SHA}?{query}", sha256=SHA, size=40123, duration_ms=5016
    )


def _signed(message: BaseModel) -> bytes:
    return SIGNER.sign_json(protocol.wire_object(message))


def examples() -> list[tuple[str, str, bytes]]:
    """(name, what it is, payload) in the order of the appendix."""
    expires = AT + timedelta(hours=1)
    emergency = protocol.Command.model_validate(
        {
            "id": "0b7c6a1e-5c1d-4d8e-9a51-3f2e8f6d1c20",
            "kind": "play",
            "broadcast": BROADCAST,
            "class": "emergency",
            "level": "province",
            "issued_at": AT,
            "expires_at": expires,
            "target": {"area": "70"},
            "title": "Cảnh báo lũ khẩn cấp",
            "media": _media(media_auth.area_scope("70"), expires),
            "display": {
                "title": "Cảnh báo lũ khẩn cấp",
                "body": "Người dân vùng trũng di chuyển đến nơi an toàn ngay.",
                "duration_s": 3600,
                "style": "emergency",
            },
        }
    )
    # A clip carried in the command (section 4.2): 64 bytes here, tens of kilobytes in use.
    clip = bytes(range(64))
    inline = emergency.model_copy(
        update={
            "id": "2a9f4c1e-7b3d-4e8a-9c6f-0d1e2f3a4b5c",
            "media": protocol.MediaRef(
                url=_media(media_auth.area_scope("70"), expires).url.replace(
                    SHA, hashlib.sha256(clip).hexdigest()
                ),
                sha256=hashlib.sha256(clip).hexdigest(),
                size=len(clip),
                duration_ms=4,
                data=protocol.inline_data(clip),
            ),
        }
    )
    stage = protocol.Command.model_validate(
        {
            "id": "stage-4e5f6a7b-8c9d-4e0f-a1b2-c3d4e5f6a7b8",
            "kind": "stage",
            "broadcast": "stage-4e5f6a7b-8c9d-4e0f-a1b2-c3d4e5f6a7b8",
            "class": "emergency",
            "level": "province",
            "issued_at": AT - timedelta(seconds=5),
            "expires_at": AT + timedelta(minutes=10),
            "target": {"area": "70"},
            "media": _media(media_auth.area_scope("70"), AT + timedelta(minutes=10)),
        }
    )
    volume = _operation(
        "5d2e7f10-8a3b-4c1d-b2e4-6f7a8b9c0d1e", "op-42", "set_volume", {"volume": 70}
    )
    moved = ["75", "25195"]  # old Tân Phú is Phường Bình Phước, Đồng Nai, since 2025-07-01
    set_areas = _operation(
        "op-7f3a9c2e-1b4d-4e6f-8a0b-2c3d4e5f6a7b",
        "op-7f3a9c2e-1b4d-4e6f-8a0b-2c3d4e5f6a7b",
        "set_areas",
        {"areas": moved, "media_key": _key(moved)},
        valid=timedelta(days=7),
    )
    cancel = protocol.Command.model_validate(
        {
            "id": "9e8d7c6b-5a4f-4e3d-8c2b-1a0f9e8d7c6b",
            "kind": "cancel",
            "broadcast": BROADCAST,
            "class": "emergency",
            "level": "province",
            "issued_at": AT + timedelta(minutes=2),
            "expires_at": expires,
            "target": {"area": "70"},
        }
    )
    slot = AT + timedelta(hours=8)
    schedule = protocol.ScheduleDoc.model_validate(
        {
            "cluster": CODE,
            "version": int(AT.timestamp() * 1000),
            "generated_at": AT,
            "valid_until": AT + timedelta(hours=48),
            "items": [
                {
                    "id": protocol.item_id("3c4d5e6f-7a8b-4c9d-8e0f-1a2b3c4d5e6f", slot),
                    "starts_at": slot,
                    "expires_at": slot + timedelta(minutes=15),
                    "class": "normal",
                    "level": "commune",
                    "title": "Bản tin sáng",
                    "media": _media(media_auth.cluster_scope(CODE), slot + timedelta(minutes=15)),
                }
            ],
        }
    )
    keyset = signing.signed_keyset(SIGNER, [SIGNER.public_text], AT)

    def ack(stage: str, **extra: Any) -> bytes:
        return protocol.Ack.model_validate(
            {
                "cmd": emergency.id,
                "broadcast": BROADCAST,
                "cluster": CODE,
                "stage": stage,
                "at": AT + timedelta(seconds=1),
                **extra,
            }
        ).to_json()

    return [
        ("keyset", "the key set, retained on `bc/v1/keys` (section 9)", keyset),
        ("command-emergency", "an emergency to a whole province (section 4)", _signed(emergency)),
        (
            "command-inline",
            "an emergency whose short clip rides in the command, `media.data` (section 4.2)",
            _signed(inline),
        ),
        (
            "command-stage",
            "a clip staged while the duty officer confirms; never answered (section 4.2)",
            _signed(stage),
        ),
        ("command-cancel", "its cancel (section 4)", _signed(cancel)),
        ("command-operation", "a device operation, set the volume (section 4.6)", _signed(volume)),
        (
            "command-set-areas",
            "new areas after a reorganisation, on the device's own topic (section 4.6)",
            _signed(set_areas),
        ),
        ("ack-received", "the acknowledgements (section 5): received", ack("received")),
        ("ack-playing", "playing", ack("playing")),
        ("ack-played", "played", ack("played")),
        (
            "ack-failed",
            "failed, with the reason",
            ack("failed", reason="media download failed: HTTP 403"),
        ),
        ("ack-rejected", "rejected, with the reason", ack("rejected", reason="bad_signature")),
        (
            "ack-local-play",
            "a play from storage, reported when the link is back (section 11)",
            protocol.Ack.model_validate(
                {
                    "cmd": "",
                    "broadcast": "",
                    "cluster": CODE,
                    "stage": "played",
                    "at": slot,
                    "item": schedule.items[0].id,
                }
            ).to_json(),
        ),
        (
            "status-birth",
            "the birth message, retained on its status topic (section 3)",
            protocol.Status(cluster=CODE, online=True, fw="1.4.2").to_json(),
        ),
        (
            "status-will",
            "the Last Will, set at connect (section 3)",
            protocol.Status(cluster=CODE, online=False).to_json(),
        ),
        (
            "heartbeat",
            "a heartbeat (section 3)",
            protocol.Heartbeat.model_validate(
                {
                    "cluster": CODE,
                    "at": AT,
                    "seq": 42,
                    "volume": 70,
                    "rssi": -71,
                    "supply_v": 221.5,
                    "power": "mains",
                    "amp_on": True,
                    "amp_temp_c": 41.5,
                    "speakers": 3,
                    "speaker_faults": [2],
                    "uptime_s": 86400,
                    "fw": "1.4.2",
                    "schedule_version": schedule.version,
                }
            ).to_json(),
        ),
        (
            "schedule",
            "a schedule document, retained on its schedule topic (section 11)",
            _signed(schedule),
        ),
    ]


def media_request() -> str:
    """What the example device fetches for the emergency's clip (section 4.2)."""
    command = json.loads(dict((n, p) for n, _, p in examples())["command-emergency"])
    return media_auth.device_url(command["media"]["url"], code=CODE, areas=AREAS, key=media_key())


def appendix() -> str:
    lines = [
        BEGIN,
        "",
        f"Made by the implementation (`python -m devices.examples` rewrites this part; a test"
        f" checks it). Example device `{CODE}` in areas `{'/'.join(AREAS)}`. The signing key"
        f' is derived from the public phrase "{EXAMPLE_PHRASE}": its public key is'
        f" `{SIGNER.public_text}` (kid `{SIGNER.kid}`); no installation trusts it. The"
        f" example `media_key` is `{media_key()}`.",
        "",
    ]
    for name, what, payload in examples():
        pretty = json.dumps(json.loads(payload), ensure_ascii=False, indent=1)
        lines += [
            f"**{name}**: {what}.",
            "",
            f"<!-- example: {name} -->",
            "```json",
            pretty,
            "```",
            "",
        ]
    lines += [
        "**media-request**: the URL the device fetches for the emergency's clip (section 4.2):"
        " the command's URL, then `c`, `p` and `d`.",
        "",
        "<!-- example: media-request -->",
        "```text",
        media_request(),
        "```",
        "",
        END,
    ]
    return "\n".join(lines)


def rewrite(doc: Path = DOC) -> None:
    text = doc.read_text()
    start, end = text.index(BEGIN), text.index(END) + len(END)
    doc.write_text(text[:start] + appendix() + text[end:])


if __name__ == "__main__":
    rewrite(Path(sys.argv[1]) if len(sys.argv) > 1 else DOC)
