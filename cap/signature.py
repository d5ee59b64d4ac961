"""XML signatures on CAP alerts (CAP 1.2 section 3.3.2.1: an enveloped XML-DSig over the
whole alert). An alert from outside may be forged; a national agency signs with its
certificate, and we accept only the certificates configured (`CAP_TRUSTED_CERTS`)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from lxml import etree
from signxml.exceptions import InvalidInput as SignxmlInvalidInput
from signxml.exceptions import InvalidSignature
from signxml.verifier import XMLVerifier

from cap.parsing import CapRefused

DSIG = "http://www.w3.org/2000/09/xmldsig#"


def is_signed(root: etree._Element) -> bool:
    return root.find(f"{{{DSIG}}}Signature") is not None


def verify(root: etree._Element, trusted: Sequence[Path]) -> str:
    """The trusted certificate's file name that the alert's signature verifies with;
    CapRefused when none does (altered after signing, or signed by someone else)."""
    if not trusted:
        raise CapRefused(
            "signed, but no certificate is trusted (set CAP_TRUSTED_CERTS)", field="signature"
        )
    problems = []
    for path in trusted:
        try:
            XMLVerifier().verify(root, x509_cert=path.read_text())
            return path.name
        except (InvalidSignature, SignxmlInvalidInput) as exc:
            problems.append(f"{path.name}: {exc}")
        except (etree.LxmlError, ValueError, TypeError, KeyError) as exc:
            # A signature the library cannot even read: Canada's NAAD System signs with
            # `Id="NAADS Signature"`, not a valid xs:ID, and lxml raised DocumentInvalid
            # (a 500 before). Whatever the signature is, it is refused, never a crash.
            problems.append(f"{path.name}: unreadable signature ({type(exc).__name__}: {exc})")
    raise CapRefused(
        "signature does not verify with a trusted certificate: " + "; ".join(problems),
        field="signature",
    )
