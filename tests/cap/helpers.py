"""CAP 1.2 messages for the tests, written with lxml as an agency's system would."""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from lxml import etree
from signxml.signer import XMLSigner

from cap import export
from cap.parsing import NS

SENDER = "canhbao@nchmf.gov.vn"  # the national hydro-meteorological forecasting centre


@dataclass
class InfoSpec:
    language: str = "vi-VN"
    headline: str = "Lũ quét trên sông Bé"
    description: str = "Mực nước sông Bé lên nhanh, vượt báo động ba."
    instruction: str = "Người dân vùng trũng di chuyển đến nơi an toàn ngay."
    urgency: str = "Immediate"
    severity: str = "Extreme"
    certainty: str = "Observed"
    category: str = "Met"
    expires: datetime.datetime | None = None
    geocodes: list[str] = field(default_factory=list)
    polygons: list[list[tuple[float, float]]] = field(default_factory=list)
    circles: list[tuple[float, float, float]] = field(default_factory=list)
    raw_polygon: str | None = None  # written as given (to test garbage)


def _add(parent: etree._Element, name: str, text: str | None = None) -> etree._Element:
    element = etree.SubElement(parent, f"{{{NS}}}{name}")
    if text is not None:
        element.text = text
    return element


def cap_time(value: datetime.datetime) -> str:
    return export.cap_time(value, "Asia/Ho_Chi_Minh")  # what an agency in Vietnam writes


def alert(
    identifier: str,
    *infos: InfoSpec,
    sent: datetime.datetime | None = None,
    status: str = "Actual",
    msg_type: str = "Alert",
    references: list[str] | None = None,
    sender: str = SENDER,
) -> etree._Element:
    root = etree.Element(f"{{{NS}}}alert", nsmap={None: NS})
    _add(root, "identifier", identifier)
    _add(root, "sender", sender)
    _add(root, "sent", sent_of(sent))
    _add(root, "status", status)
    _add(root, "msgType", msg_type)
    _add(root, "scope", "Public")
    if references:
        _add(root, "references", " ".join(references))
    for spec in infos:
        info = _add(root, "info")
        _add(info, "language", spec.language)
        _add(info, "category", spec.category)
        _add(info, "event", spec.headline)
        _add(info, "urgency", spec.urgency)
        _add(info, "severity", spec.severity)
        _add(info, "certainty", spec.certainty)
        if spec.expires is not None:
            _add(info, "expires", cap_time(spec.expires))
        _add(info, "headline", spec.headline)
        _add(info, "description", spec.description)
        _add(info, "instruction", spec.instruction)
        area = _add(info, "area")
        _add(area, "areaDesc", "Tỉnh Bình Phước")
        for polygon in spec.polygons:
            _add(area, "polygon", " ".join(f"{lat},{lon}" for lat, lon in polygon))
        if spec.raw_polygon is not None:
            _add(area, "polygon", spec.raw_polygon)
        for lat, lon, km in spec.circles:
            _add(area, "circle", f"{lat},{lon} {km}")
        for code in spec.geocodes:
            geocode = _add(area, "geocode")
            _add(geocode, "valueName", "VN-GSO")
            _add(geocode, "value", code)
    return root


# Today: alerts older than CAP_MAX_AGE_S are refused as stale (a capture sent again).
SENT = datetime.datetime.now(datetime.UTC).replace(second=0, microsecond=0) - datetime.timedelta(
    minutes=30
)


def sent_of(sent: datetime.datetime | None) -> str:
    return cap_time(sent or SENT)


def key_of(identifier: str, sent: datetime.datetime | None = None) -> str:
    return f"{SENDER},{identifier},{sent_of(sent)}"


def xml(root: etree._Element) -> bytes:
    return bytes(etree.tostring(root, xml_declaration=True, encoding="UTF-8"))


@dataclass(frozen=True)
class Signer:
    key_pem: bytes
    cert_pem: str

    @classmethod
    def make(cls, name: str) -> Signer:
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        now = datetime.datetime.now(datetime.UTC)
        cert = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=30))
            .sign(key, hashes.SHA256())
        )
        return cls(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            ),
            cert.public_bytes(serialization.Encoding.PEM).decode(),
        )

    def sign(self, root: etree._Element) -> bytes:
        return xml(XMLSigner().sign(root, key=self.key_pem, cert=self.cert_pem))

    def cert_file(self, directory: Path, name: str) -> Path:
        path = directory / f"{name}.pem"
        path.write_text(self.cert_pem)
        return path
