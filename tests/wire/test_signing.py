"""Ed25519 signatures: what a device accepts, and every way a payload is refused."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from core.settings import Settings
from wire import protocol
from wire.signing import SignatureError, SignatureProblem, SigningKey, TrustStore, signed_keyset

NOW = datetime(2026, 11, 24, 2, 0, tzinfo=UTC)


def _command(**changes: object) -> dict[str, object]:
    command = protocol.Command.model_validate(
        {
            "id": "c1",
            "kind": "play",
            "broadcast": "b1",
            "class": "emergency",
            "issued_at": NOW,
            "expires_at": NOW + timedelta(minutes=5),
            "target": {"area": "70"},
            "title": "Cảnh báo lũ khẩn cấp",
        }
    )
    return {**protocol.wire_object(command), **changes}


def test_a_signed_command_verifies_after_any_reserialisation() -> None:
    key = SigningKey.generate()
    wire = key.sign_json(_command())
    received = json.loads(wire)
    # Another JSON library may order keys and space differently: the canonical form is the
    # same, so the signature still holds.
    respaced = json.loads(json.dumps(dict(reversed(list(received.items()))), indent=2))
    TrustStore([key.public_text]).check(respaced)
    assert received["sig"].startswith(key.kid + ".")
    assert "Cảnh báo" in wire.decode(), "UTF-8 as is, not escaped"


@pytest.mark.parametrize(
    ("tamper", "problem"),
    [
        (lambda o: o.pop("sig"), SignatureProblem.UNSIGNED),
        (lambda o: o.update(sig=""), SignatureProblem.UNSIGNED),
        (lambda o: o.update(target={"area": "71"}), SignatureProblem.BAD_SIGNATURE),  # misaddress
        (lambda o: o.update(expires_at="2099-01-01T00:00:00Z"), SignatureProblem.BAD_SIGNATURE),
        (lambda o: o.update(**{"class": "normal"}), SignatureProblem.BAD_SIGNATURE),
        (lambda o: o.update(extra="added"), SignatureProblem.BAD_SIGNATURE),
        (lambda o: o.update(sig=o["sig"].split(".")[0] + ".!!"), SignatureProblem.BAD_SIGNATURE),
        (lambda o: o.update(sig="0123456789abcdef." + o["sig"].split(".")[1]), "unknown_key"),
    ],
)
def test_every_change_to_a_signed_payload_is_refused(tamper: object, problem: str) -> None:
    key = SigningKey.generate()
    signed = json.loads(key.sign_json(_command()))
    tamper(signed)  # type: ignore[operator]
    with pytest.raises(SignatureError) as refused:
        TrustStore([key.public_text]).check(signed)
    assert refused.value.problem == problem


def test_a_forger_with_its_own_key_is_an_unknown_key() -> None:
    ours, theirs = SigningKey.generate(), SigningKey.generate()
    forged = json.loads(theirs.sign_json(_command()))
    with pytest.raises(SignatureError) as refused:
        TrustStore([ours.public_text]).check(forged)
    assert refused.value.problem is SignatureProblem.UNKNOWN_KEY
    # Claiming our key id does not help: the signature does not verify under our key.
    forged["sig"] = ours.kid + "." + forged["sig"].split(".", 1)[1]
    with pytest.raises(SignatureError) as refused:
        TrustStore([ours.public_text]).check(forged)
    assert refused.value.problem is SignatureProblem.BAD_SIGNATURE


def test_rotation_trusts_current_and_previous_until_the_set_changes() -> None:
    old, new = SigningKey.generate(), SigningKey.generate()
    store = TrustStore([old.public_text])
    keyset, raw = protocol.parse_signed(
        protocol.KeySet, signed_keyset(old, [old.public_text, new.public_text], NOW)
    )
    store.check(raw)  # signed by a key the device already trusts
    store.replace(keyset.keys)
    for key in (old, new):
        store.check(json.loads(key.sign_json(_command())))
    assert keyset.version == int(NOW.timestamp() * 1000)
    store.replace([new.public_text])
    with pytest.raises(SignatureError):
        store.check(json.loads(old.sign_json(_command())))


def test_settings_derive_a_key_from_the_secret_and_list_the_trusted_ones() -> None:
    a = Settings(secret_key="one")
    assert a.signer.public == Settings(secret_key="one").signer.public
    assert a.signer.public != Settings(secret_key="two").signer.public
    explicit = SigningKey.generate()
    other = SigningKey.generate().public_text
    b = Settings(signing_key=explicit.seed_text, trusted_keys=[other, explicit.public_text])
    assert b.signer.public == explicit.public
    assert b.device_trusted_keys == [explicit.public_text, other], "signing key first, once"
    with pytest.raises(ValueError, match="SIGNING_KEY"):
        Settings(signing_key="too-short")
    with pytest.raises(ValueError, match="TRUSTED_KEYS"):
        Settings(trusted_keys=["not*base64"])
