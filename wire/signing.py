"""Ed25519 signatures on what the control plane sends devices (docs/protocol.md section 9).

Imported by the control plane (signs), the simulator and any device implementation
(verify). Standard library and PyNaCl (libsodium) only: libsodium verifies in about half
the time of OpenSSL's Ed25519 here, and every simulated cluster of a province verifies
each command.

- A signature covers the payload's **canonical form**: the JSON object without its `sig`
  member, keys sorted, no whitespace, UTF-8 (RFC 8785 JCS for the value types the protocol
  uses: strings, integers, booleans, null, arrays and objects; no floats in signed
  payloads). The device re-canonicalises what it received, so JSON libraries on either
  side need not agree on spacing or key order.
- `sig` is `"{kid}.{base64url(signature)}"`; `kid` names the key (the first 8 bytes of the
  SHA-256 of the public key, in hex), so a device holding two keys during a rotation
  knows which one to try.
- What a signature binds (the addressed cluster or area, issued-at, expiry, the command
  id) is in the signed payload itself; checking those is the caller's job, after this.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from nacl.exceptions import BadSignatureError
from nacl.signing import SigningKey as _NaclSigningKey
from nacl.signing import VerifyKey

from wire.protocol import KeySet, SignatureProblem, wire_object

__all__ = [
    "SignatureError",
    "SignatureProblem",
    "SigningKey",
    "TrustStore",
    "canonical",
    "signed_keyset",
]

SIG_FIELD = "sig"
KEY_CONTEXT = b"loa/command-signing/v1"


class SignatureError(ValueError):
    def __init__(self, problem: SignatureProblem, detail: str = "") -> None:
        super().__init__(f"{problem.value}{': ' + detail if detail else ''}")
        self.problem = problem


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def canonical(obj: dict[str, Any]) -> bytes:
    """The bytes a signature covers: the object without `sig`, canonical JSON."""
    body = {k: v for k, v in obj.items() if k != SIG_FIELD}
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def key_id(public: bytes) -> str:
    return hashlib.sha256(public).hexdigest()[:16]


def public_key_text(public: bytes) -> str:
    """How public keys travel in provisioning, settings and key documents."""
    return _b64(public)


@dataclass(frozen=True)
class SigningKey:
    """The control plane's private key."""

    _key: _NaclSigningKey

    @classmethod
    def from_seed(cls, seed: bytes) -> SigningKey:
        return cls(_NaclSigningKey(seed))

    @classmethod
    def from_text(cls, text: str) -> SigningKey:
        """From a base64url 32-byte seed (`broadcast keys generate`)."""
        seed = _unb64(text.strip())
        if len(seed) != 32:
            raise ValueError("an Ed25519 seed is 32 bytes (base64url)")
        return cls.from_seed(seed)

    @classmethod
    def derived(cls, secret: str) -> SigningKey:
        """From the deployment's secret, for installations that set no key of their own."""
        return cls.from_seed(hmac.new(secret.encode(), KEY_CONTEXT, hashlib.sha256).digest())

    @classmethod
    def generate(cls) -> SigningKey:
        return cls(_NaclSigningKey.generate())

    @property
    def seed_text(self) -> str:
        return _b64(bytes(self._key))

    @property
    def public(self) -> bytes:
        return bytes(self._key.verify_key)

    @property
    def public_text(self) -> str:
        return public_key_text(self.public)

    @property
    def kid(self) -> str:
        return key_id(self.public)

    def sign(self, obj: dict[str, Any]) -> dict[str, Any]:
        """The object with its `sig` member (any old one replaced)."""
        signature = self._key.sign(canonical(obj)).signature
        return {**obj, SIG_FIELD: f"{self.kid}.{_b64(signature)}"}

    def sign_json(self, obj: dict[str, Any]) -> bytes:
        """Signed and serialised for the wire."""
        return json.dumps(self.sign(obj), separators=(",", ":"), ensure_ascii=False).encode()


class TrustStore:
    """The public keys a device accepts: the current one, and during a rotation the
    previous or the next one too."""

    def __init__(self, public_keys: Iterable[str] = ()) -> None:
        self._keys: dict[str, VerifyKey] = {}
        self.replace(public_keys)

    def replace(self, public_keys: Iterable[str]) -> None:
        keys = {}
        for text in public_keys:
            raw = _unb64(text)
            keys[key_id(raw)] = VerifyKey(raw)
        self._keys = keys

    @property
    def kids(self) -> frozenset[str]:
        return frozenset(self._keys)

    def check(self, obj: dict[str, Any]) -> None:
        """Raise SignatureError unless `obj` carries a valid signature by a trusted key."""
        sig = obj.get(SIG_FIELD)
        if not isinstance(sig, str) or not sig:
            raise SignatureError(SignatureProblem.UNSIGNED)
        kid, _, value = sig.partition(".")
        key = self._keys.get(kid)
        if key is None:
            raise SignatureError(SignatureProblem.UNKNOWN_KEY, kid)
        try:
            key.verify(canonical(obj), _unb64(value))
        except (BadSignatureError, ValueError, TypeError) as exc:
            raise SignatureError(SignatureProblem.BAD_SIGNATURE) from exc


def signed_keyset(signer: SigningKey, keys: Iterable[str], now: datetime) -> bytes:
    """The retained key set (protocol section 9): versioned by the clock's milliseconds, so a
    newer publication always wins, and signed by the current key, which devices trust."""
    keyset = KeySet(version=int(now.timestamp() * 1000), issued_at=now, keys=tuple(keys))
    return signer.sign_json(wire_object(keyset))
