"""Every sentence the pages write is in the Vietnamese catalogue: a page must not fall
back to English halfway through for the people it is written for."""

from __future__ import annotations

import re

from babel.messages.pofile import read_po

from console import i18n
from reports.exports import AREA_COLUMNS

# _("...") and _('...') with a literal inside, in templates and in the page code.
LITERAL = re.compile(r"""\b_\(\s*(?:"((?:[^"\\]|\\.)*)"|'((?:[^'\\]|\\.)*)')\s*\)""")


def _written() -> set[str]:
    sources = [
        *(i18n.HERE / "templates").glob("*.html"),
        i18n.HERE / "router.py",
        i18n.HERE.parent / "reports" / "exports.py",  # the workbook's headings
    ]
    found: set[str] = {heading for heading, _ in AREA_COLUMNS}
    for source in sources:
        for double, single in LITERAL.findall(source.read_text()):
            found.add(double or single)
    return found


def test_every_literal_message_has_a_vietnamese_translation() -> None:
    with (i18n.HERE / "locale" / "vi" / "LC_MESSAGES" / "messages.po").open("rb") as f:
        catalogue = read_po(f, locale="vi")
    translated = {m.id for m in catalogue if m.id and m.string}
    written = _written()
    assert len(written) > 100  # the pattern still finds the pages' messages
    assert sorted(written - translated) == []


def test_the_catalogue_compiles_and_translates() -> None:
    vi = i18n.translations("vi")
    assert vi.gettext("Send an emergency") == "Phát tin khẩn cấp"
    assert i18n.translations("en").gettext("Send an emergency") == "Send an emergency"
