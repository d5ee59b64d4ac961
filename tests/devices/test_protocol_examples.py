"""docs/protocol.md Appendix A: the examples are exactly what the implementation makes,
each parses as the message it names, every signed one verifies with the example key, and
the media request passes the media server's check (issue 20: a vendor builds from the
document alone, so its examples cannot be allowed to drift)."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import pytest

from devices import examples
from wire import media_auth, protocol, signing

PARSERS: dict[str, Callable[[bytes], Any]] = {
    "keyset": protocol.parse_keyset,
    "command": protocol.parse_command,
    "ack": protocol.parse_ack,
    "status": protocol.parse_status,
    "heartbeat": protocol.parse_heartbeat,
    "schedule": protocol.parse_schedule,
}
SIGNED = ("keyset", "command", "schedule")


def _documented() -> dict[str, str]:
    text = examples.DOC.read_text()
    return dict(re.findall(r"<!-- example: ([a-z-]+) -->\n```[a-z]+\n(.*?)\n```", text, re.S))


def test_the_document_holds_exactly_what_the_implementation_makes() -> None:
    text = examples.DOC.read_text()
    start = text.index(examples.BEGIN)
    end = text.index(examples.END) + len(examples.END)
    assert text[start:end] == examples.appendix(), "run `python -m devices.examples`"


@pytest.mark.parametrize("name", [name for name, _, _ in examples.examples()])
def test_each_example_parses_and_every_signed_one_verifies(name: str) -> None:
    payload = _documented()[name].encode()
    kind = name.split("-")[0]
    message = PARSERS[kind](payload)
    assert message.v == 1
    if kind in SIGNED:
        trust = signing.TrustStore([examples.SIGNER.public_text])
        trust.check(json.loads(payload))
        # Re-aimed (a command) or rolled back (a versioned document): the signature fails.
        change = {"target": {"area": "71"}} if kind == "command" else {"version": 1}
        with pytest.raises(signing.SignatureError):
            trust.check(json.loads(payload) | change)


def test_the_media_request_passes_the_media_servers_check_and_a_copy_does_not() -> None:
    url = urlsplit(_documented()["media-request"])
    sha = url.path.rsplit("/", 1)[1]
    at = examples.AT.timestamp()
    assert media_auth.verify(examples.MEDIA_SERVER_KEY, sha, url.query, at) is None
    elsewhere = url.query.replace("c=25195-01", "c=25195-02")
    refused = media_auth.verify(examples.MEDIA_SERVER_KEY, sha, elsewhere, at)
    assert refused is not None and "proof" in refused.reason
