"""CAP as others write it (issue 20): published alerts and an open-source library's
fixtures (tests/cap/corpus/README.md says where each came from), then the shapes that
broke us: UTF-16 with a DOCTYPE or an external entity, a signature the XML-DSig library
cannot read, a Cancel for an alert still waiting in the communes' inboxes, an Extreme
alert in a language no voice here speaks. No answer is a 5xx and every message is kept."""

from __future__ import annotations

import datetime
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
from lxml import etree

from cap.feeds import _entry_links
from cap.parsing import NS
from simulator.fleet import Fleet
from simulator.provisioning import fetch_specs
from tests.cap.helpers import SENT, InfoSpec, alert, cap_time, key_of, xml
from tests.factories import add_eboard, small_province
from tests.security.helpers import make_user, signed_in
from tests.support import Stack, counts
from web.deps import SESSION_COOKIE
from wire.protocol import DisplayStyle

CORPUS = Path(__file__).parent / "corpus"
CAP_HEADERS = {"content-type": "application/cap+xml"}
TWENTY_FIVE_YEARS_S = 25 * 365 * 86400  # so that old published alerts get past "stale"
COMMUNE = "25216"

# What becomes of each published message: (status, outcome, a phrase of the reason).
EXPECTED = {
    "43b080713727.cap": (200, "ignored", "no area of this province"),
    "thunderstorm.cap": (200, "ignored", "expired at 2003-06-17"),
    "australia.cap": (200, "ignored", "expired at 2011-10-06"),
    "canada.cap": (200, "ignored", "expired at 2012-05-03"),
    "wcatwc-warning.cap": (200, "ignored", "expired at 2011-09-02"),
    # NAAD's signature Id is not an xs:ID: refused naming the signature (a 500 before).
    "canada_signed.cap": (422, "rejected", "'NAADS Signature' is not a valid value"),
    # RSA-SHA1 is broken; signxml refuses it, and so do we.
    "earthquake-iso8859-1.cap": (422, "rejected", "RSA_SHA1 forbidden"),
    "invalid.cap": (422, "rejected", "not valid CAP 1.2"),
    "xee.cap": (422, "rejected", "document type declaration is not allowed"),
    **{
        name: (422, "rejected", "expected alert in the urn:oasis:names:tc:emergency:cap:1.2")
        for name in (
            "KAR0-0306112239-SW.cap",
            "earthquake.cap",
            "earthquake_signed.cap",
            "no_optional_fields.cap",
            "noaa_errors.cap",
            "weather.cap",
        )
    },
}


@pytest.fixture
async def trusting(stack_factory: Callable[..., Awaitable[Stack]]) -> Stack:
    """A stack that trusts the corpus's certificates and reads alerts of any age."""
    stack = await stack_factory(
        cap_max_age_s=TWENTY_FIVE_YEARS_S,
        cap_trusted_certs=[
            CORPUS / "naads_x509_cert.pem",
            CORPUS / "environment_canada_x509_cert.pem",
        ],
    )
    await small_province(stack)
    return stack


def test_the_corpus_is_what_the_test_expects() -> None:
    assert sorted(p.name for p in CORPUS.glob("*.cap")) == sorted(EXPECTED)


def test_a_meteoalarm_atom_index_yields_each_entrys_cap_link_not_the_related_page() -> None:
    """MeteoAlarm's national feeds are Atom indexes whose entries carry the CAP fields as
    `cap:` elements and two links: the alert (application/cap+xml) and a related web page.
    Only the alert is fetched, one per entry, in the feed's order."""
    index = (CORPUS / "meteoalarm-spain.atom.xml").read_bytes()
    base = "https://feeds.meteoalarm.org/api/v1/warnings/feeds-spain/"
    assert _entry_links(index) == [
        base + "9d62e839-995b-4831-854e-3c006c69eefb",
        base + "a7d8d751-9f9d-42e2-a0a3-2546c4820139",
        base + "529c8045-1515-4f25-88a1-122e4e16f971",
        base + "00000000-0000-0000-0000-000000000000",
    ]


async def test_published_alerts_get_their_expected_outcome_and_are_all_kept(
    trusting: Stack,
) -> None:
    stack = trusting
    for name, (status, outcome, phrase) in sorted(EXPECTED.items()):
        response = await stack.client.post(
            "/api/v1/cap", content=(CORPUS / name).read_bytes(), headers=CAP_HEADERS
        )
        receipt = response.json()
        assert (response.status_code, receipt["outcome"]) == (status, outcome), (name, receipt)
        assert phrase in (receipt["reason"] or ""), (name, receipt["reason"])
        if name == "canada_signed.cap":
            assert receipt["detail"] == {"field": "signature"}
    kept = (await stack.client.get("/api/v1/cap?limit=100")).json()
    assert kept["total"] == len(EXPECTED)
    # Stored as it arrived, in its own encoding: ISO-8859-1 read as ISO-8859-1.
    raws = [await _raw(stack, m["id"]) for m in kept["items"]]
    latin = next(r for r in raws if 'encoding="ISO-8859-1"' in r and "cap:1.2" in r)
    assert "\ufffd" not in latin and "Usulután" in latin


async def test_the_oasis_example_moved_to_this_province_airs_in_english(trusting: Stack) -> None:
    """The specification's thunderstorm warning, sent now, for one of our communes: its
    real structure (event codes, parameters, a polygon) airs, read by the English voice."""
    root = etree.fromstring((CORPUS / "thunderstorm.cap").read_bytes())
    q = f"{{{NS}}}"
    now = datetime.datetime.now(datetime.UTC).replace(microsecond=0)
    root.find(q + "sent").text = cap_time(now - datetime.timedelta(minutes=1))  # type: ignore[union-attr]
    info = root.find(q + "info")
    assert info is not None
    info.find(q + "expires").text = cap_time(now + datetime.timedelta(hours=1))  # type: ignore[union-attr]
    area = info.find(q + "area")
    assert area is not None
    for polygon in area.findall(q + "polygon"):
        area.remove(polygon)
    geocode = etree.SubElement(area, q + "geocode")
    etree.SubElement(geocode, q + "valueName").text = "VN-GSO"
    etree.SubElement(geocode, q + "value").text = COMMUNE
    response = await trusting.client.post("/api/v1/cap", content=xml(root), headers=CAP_HEADERS)
    assert response.status_code == 201, response.text
    broadcast = await trusting.broadcast(response.json()["broadcast_id"])
    assert broadcast["class"] == "emergency" and broadcast["target_areas"] == [COMMUNE]
    assert "SEVERE THUNDERSTORM" in broadcast["title"].upper()


async def _raw(stack: Stack, message_id: str) -> str:
    raw: str = (await stack.client.get(f"/api/v1/cap/{message_id}")).json()["raw"]
    return raw


def _utf16(document: str) -> bytes:
    return document.encode("utf-16")


async def test_utf16_documents_are_read_as_utf16_and_doctypes_refused_in_any_encoding(
    trusting: Stack,
) -> None:
    body = etree.tostring(alert("U16", InfoSpec(geocodes=[COMMUNE])), encoding="unicode")
    declaration = '<?xml version="1.0" encoding="UTF-16"?>\n'
    doctype = declaration + "<!DOCTYPE alert>\n" + body
    entity = (
        declaration
        + '<!DOCTYPE alert [<!ENTITY x SYSTEM "file:///etc/passwd">]>\n'
        + body.replace("Lũ quét", "&x; Lũ quét", 1)
    )
    for document in (doctype, entity):
        refused = await trusting.client.post(
            "/api/v1/cap", content=_utf16(document), headers=CAP_HEADERS
        )
        assert refused.status_code == 422, refused.text
        assert "document type declaration" in refused.json()["reason"]
    fine = await trusting.client.post(
        "/api/v1/cap", content=_utf16(declaration + body), headers=CAP_HEADERS
    )
    assert fine.status_code == 201, fine.text
    kept = (await trusting.client.get("/api/v1/cap?limit=10")).json()["items"]
    raws = [await _raw(trusting, m["id"]) for m in kept]
    assert len(raws) == 3 and all("Lũ quét trên sông Bé" in r and "\x00" not in r for r in raws)


async def test_a_cancel_withdraws_what_waits_in_the_inboxes_and_an_update_replaces_it(
    trusting: Stack,
) -> None:
    """A normal alert waits in the communes' inboxes; its Cancel used to answer "cancels
    nothing that aired here" and leave it there, so a commune could air a cancelled
    warning."""
    stack = trusting
    normal = InfoSpec(urgency="Future", severity="Minor", certainty="Possible", geocodes=["689"])
    first = await stack.client.post(
        "/api/v1/cap", content=xml(alert("KC-1", normal)), headers=CAP_HEADERS
    )
    assert first.status_code == 201, first.text
    waiting = (await stack.client.get("/api/v1/inbox?area=689")).json()["items"]
    assert len(waiting) == 2 and {i["status"] for i in waiting} == {"pending"}

    later = SENT + datetime.timedelta(minutes=5)
    update = await stack.client.post(
        "/api/v1/cap",
        content=xml(
            alert("KC-1-U", normal, msg_type="Update", references=[key_of("KC-1")], sent=later)
        ),
        headers=CAP_HEADERS,
    )
    assert update.status_code == 201, update.text
    assert "replaces 2 inbox item(s) still waiting" in update.json()["reason"]
    items = (await stack.client.get("/api/v1/inbox?area=689")).json()["items"]
    assert sorted(i["status"] for i in items) == ["pending", "pending", "withdrawn", "withdrawn"]

    cancel = await stack.client.post(
        "/api/v1/cap",
        content=xml(
            alert(
                "KC-1-C",
                msg_type="Cancel",
                references=[key_of("KC-1-U", later)],
                sent=later + datetime.timedelta(minutes=5),
            )
        ),
        headers=CAP_HEADERS,
    )
    assert cancel.status_code == 201, cancel.text
    assert cancel.json()["reason"] == "withdrew 2 inbox item(s) still waiting in the communes"
    items = (await stack.client.get("/api/v1/inbox?area=689")).json()["items"]
    assert {i["status"] for i in items} == {"withdrawn"}
    accept = await stack.client.post(f"/api/v1/inbox/{items[0]['id']}/accept", json={})
    assert accept.status_code == 409 and "withdrawn" in accept.text


async def test_an_extreme_alert_no_voice_speaks_is_held_for_the_duty_officer(
    trusting: Stack, fleet_factory: Callable[..., Fleet]
) -> None:
    """German only: refused outright before. Now its text goes up at once on the e-boards
    of its areas (no speaker is told: nothing here can say it), and it is kept as a
    bulletin submitted to the province for the duty officer to voice in Vietnamese (202).
    The issuer's Cancel takes it off the screens."""
    board = await add_eboard(trusting, COMMUNE, f"EB-{COMMUNE}")
    speaker = next(
        s for s in await fetch_specs(trusting.settings.public_base_url) if s.code == f"{COMMUNE}-01"
    )
    fleet = fleet_factory([board, speaker], time_compression=10)
    await fleet.start()
    german = InfoSpec(
        language="de-DE",
        headline="Sturzflut am Fluss",
        description="Der Fluss steigt schnell.",
        instruction="Begeben Sie sich sofort in höhere Lagen.",
        geocodes=[COMMUNE],
    )
    response = await trusting.client.post(
        "/api/v1/cap", content=xml(alert("DE-1", german)), headers=CAP_HEADERS
    )
    assert response.status_code == 202, response.text
    receipt = response.json()
    assert receipt["outcome"] == "held" and receipt["broadcast_id"] is not None
    assert "no voice here speaks de-DE; its text on the e-boards" in receipt["reason"]
    shown = await trusting.wait_broadcast(
        receipt["broadcast_id"], lambda b: counts(b, "playing") == 1
    )
    assert shown["display_only"] and shown["target_clusters"] == [board.code]
    screen = fleet.devices[board.code].shown[-1]
    assert "Der Fluss steigt schnell." in screen.body and screen.language == "de-DE"
    assert screen.style is DisplayStyle.EMERGENCY
    assert receipt["broadcast_id"] not in fleet.devices[speaker.code].play_counts
    held = (await trusting.client.get("/api/v1/cap?outcome=held")).json()["items"]
    assert [m["identifier"] for m in held] == ["DE-1"]
    bulletin_id = receipt["reason"].split("(bulletin ")[1].split(",")[0]
    bulletin = (await trusting.client.get(f"/api/v1/bulletins/{bulletin_id}")).json()
    assert bulletin["status"] == "submitted" and bulletin["class"] == "emergency"
    assert "Der Fluss steigt schnell." in bulletin["text"]

    # On the duty officer's first page, red, with a link to it.
    await make_user(trusting, "truc.ban", role="province_officer")
    token = await signed_in(trusting, "truc.ban")
    home = await trusting.client.get("/console", headers={"cookie": f"{SESSION_COOKIE}={token}"})
    assert home.status_code == 200
    assert 'role="alert"' in home.text and "[de-DE] Sturzflut am Fluss" in home.text
    assert f"/console/bulletins#bulletin-{bulletin_id}" in home.text

    cancel = await trusting.client.post(
        "/api/v1/cap",
        content=xml(
            alert(
                "DE-1-C",
                german,
                msg_type="Cancel",
                references=[key_of("DE-1", SENT)],
                sent=SENT + datetime.timedelta(minutes=5),
            )
        ),
        headers=CAP_HEADERS,
    )
    assert cancel.status_code == 201, cancel.text
    # The e-board's own answer says it took the text down.
    await trusting.wait_broadcast(receipt["broadcast_id"], lambda b: counts(b, "canceled") == 1)
    assert receipt["broadcast_id"] in fleet.devices[board.code].cancels
    # ... and retires the held bulletin: archived, out of the red banner, never to air.
    assert f"archived the held bulletin(s) {bulletin_id}" in cancel.json()["reason"]
    retired = (await trusting.client.get(f"/api/v1/bulletins/{bulletin_id}")).json()
    assert retired["status"] == "archived"
    home = await trusting.client.get("/console", headers={"cookie": f"{SESSION_COOKIE}={token}"})
    assert "[de-DE] Sturzflut am Fluss" not in home.text
    aired = await trusting.client.post(
        "/api/v1/broadcasts",
        json={"title": "Lũ", "class": "emergency", "areas": [COMMUNE], "bulletin_id": bulletin_id},
    )
    assert aired.status_code == 409 and "archived" in aired.text, aired.text
