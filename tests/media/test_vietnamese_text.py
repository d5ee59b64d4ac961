"""Bulletin text in words for the offline voice: numbers, dates, times, ranges and units."""

from __future__ import annotations

import unicodedata

import pytest

from media.tts.vietnamese import (
    normalise,
    read_date,
    read_decimal,
    read_digits,
    read_integer,
    read_time,
)

BULLETIN = (
    "Lúc 14h30 ngày 23/11/2026, mực nước sông Bé đạt 12,75 m, lượng mưa 100-200mm.",
    "Lúc mười bốn giờ ba mươi phút ngày hai mươi ba tháng mười một năm hai nghìn không trăm "
    "hai mươi sáu, mực nước sông Bé đạt mười hai phẩy bảy mươi lăm mét, lượng mưa một trăm "
    "đến hai trăm mi li mét.",
)


@pytest.mark.parametrize(
    ("n", "words"),
    [
        (0, "không"),
        (1, "một"),
        (4, "bốn"),
        (5, "năm"),
        (10, "mười"),
        (11, "mười một"),
        (14, "mười bốn"),
        (15, "mười lăm"),
        (20, "hai mươi"),
        (21, "hai mươi mốt"),
        (24, "hai mươi tư"),
        (25, "hai mươi lăm"),
        (31, "ba mươi mốt"),
        (44, "bốn mươi tư"),
        (55, "năm mươi lăm"),
        (99, "chín mươi chín"),
        (100, "một trăm"),
        (101, "một trăm linh một"),
        (104, "một trăm linh bốn"),
        (105, "một trăm linh năm"),
        (110, "một trăm mười"),
        (111, "một trăm mười một"),
        (115, "một trăm mười lăm"),
        (121, "một trăm hai mươi mốt"),
        (1000, "một nghìn"),
        (1001, "một nghìn không trăm linh một"),
        (1005, "một nghìn không trăm linh năm"),
        (1010, "một nghìn không trăm mười"),
        (1050, "một nghìn không trăm năm mươi"),
        (1100, "một nghìn một trăm"),
        (2026, "hai nghìn không trăm hai mươi sáu"),
        (15_000, "mười lăm nghìn"),
        (21_000, "hai mươi mốt nghìn"),
        (105_000, "một trăm linh năm nghìn"),
        (1_000_000, "một triệu"),
        (1_000_001, "một triệu không trăm linh một"),
        (1_000_021, "một triệu không trăm hai mươi mốt"),
        (1_005_000, "một triệu không trăm linh năm nghìn"),
        (1_500_000, "một triệu năm trăm nghìn"),
        (1_000_000_000, "một tỷ"),
        (1_005_000_000, "một tỷ không trăm linh năm triệu"),
        (1_000_000_500, "một tỷ năm trăm"),
        (2_500_000_000, "hai tỷ năm trăm triệu"),
        (1_000_000_000_000, "một nghìn tỷ"),
        (-5, "âm năm"),
    ],
)
def test_read_integer(n: int, words: str) -> None:
    assert read_integer(n) == words


@pytest.mark.parametrize(
    ("numeral", "words"),
    [
        ("1,5", "một phẩy năm"),
        ("12,75", "mười hai phẩy bảy mươi lăm"),
        ("0,05", "không phẩy không năm"),
        ("2,0", "hai phẩy không"),
        ("3,14159", "ba phẩy một bốn một năm chín"),
        ("1.500.000", "một triệu năm trăm nghìn"),
        ("1.500.000,5", "một triệu năm trăm nghìn phẩy năm"),
        ("-5", "âm năm"),
        ("−2,5", "âm hai phẩy năm"),
        ("05", "năm"),
        ("0912345678", "không chín một hai ba bốn năm sáu bảy tám"),
    ],
)
def test_read_decimal(numeral: str, words: str) -> None:
    assert read_decimal(numeral) == words


@pytest.mark.parametrize("numeral", ["", "abc", "1.50", "1,", "12.75", "1,500,000"])
def test_read_decimal_rejects_other_notations(numeral: str) -> None:
    with pytest.raises(ValueError):
        read_decimal(numeral)


def test_read_digits() -> None:
    assert read_digits("0250") == "không hai năm không"
    with pytest.raises(ValueError):
        read_digits("12a")


@pytest.mark.parametrize(
    ("day", "month", "year", "words"),
    [
        (23, 11, 2026, "ngày hai mươi ba tháng mười một năm hai nghìn không trăm hai mươi sáu"),
        (23, 11, None, "ngày hai mươi ba tháng mười một"),
        (1, 1, None, "ngày một tháng một"),
        (24, 4, None, "ngày hai mươi tư tháng tư"),
        (21, 12, None, "ngày hai mươi mốt tháng mười hai"),
        (None, 4, 2026, "tháng tư năm hai nghìn không trăm hai mươi sáu"),
    ],
)
def test_read_date(day: int | None, month: int, year: int | None, words: str) -> None:
    assert read_date(day, month, year) == words


def test_read_date_without_prefix_and_out_of_range() -> None:
    assert read_date(5, 9, prefix=False) == "năm tháng chín"
    with pytest.raises(ValueError):
        read_date(32, 1)
    with pytest.raises(ValueError):
        read_date(1, 13)


@pytest.mark.parametrize(
    ("hour", "minute", "second", "words"),
    [
        (14, 30, 0, "mười bốn giờ ba mươi phút"),
        (14, 0, 0, "mười bốn giờ"),
        (7, 5, 0, "bảy giờ năm phút"),
        (0, 15, 0, "không giờ mười lăm phút"),
        (14, 30, 15, "mười bốn giờ ba mươi phút mười lăm giây"),
        (6, 0, 5, "sáu giờ không phút năm giây"),
    ],
)
def test_read_time(hour: int, minute: int, second: int, words: str) -> None:
    assert read_time(hour, minute, second) == words


def test_read_time_out_of_range() -> None:
    with pytest.raises(ValueError):
        read_time(25)
    with pytest.raises(ValueError):
        read_time(10, 60)


@pytest.mark.parametrize(
    ("text", "spoken"),
    [
        # numbers
        ("0", "không"),
        ("số 0", "số không"),
        ("năm 2026", "năm hai nghìn không trăm hai mươi sáu"),
        ("1.500.000 đồng", "một triệu năm trăm nghìn đồng"),
        ("1.500", "một nghìn năm trăm"),
        ("hơn 1.000 hộ.", "hơn một nghìn hộ."),
        ("1,5", "một phẩy năm"),
        ("12,75", "mười hai phẩy bảy mươi lăm"),
        ("làm 02 người bị thương", "làm hai người bị thương"),
        ("gọi 0912345678", "gọi không chín một hai ba bốn năm sáu bảy tám"),
        ("Quốc lộ 14", "Quốc lộ mười bốn"),
        ("QL1A", "QL một A"),
        ("H5N1", "H năm N một"),
        ("tháng 4", "tháng tư"),
        ("tháng 1", "tháng một"),
        ("thứ 4", "thứ tư"),
        ("lần thứ 1", "lần thứ nhất"),
        ("cấp 4", "cấp bốn"),
        # negative numbers
        ("-5°C", "âm năm độ C"),
        ("nhiệt độ -2,5 °C", "nhiệt độ âm hai phẩy năm độ C"),
        ("âm 5 độ", "âm năm độ"),
        ("(-5)", "(âm năm)"),
        ("COVID-19", "COVID-mười chín"),
        # dates
        ("23/11/2026", "ngày hai mươi ba tháng mười một năm hai nghìn không trăm hai mươi sáu"),
        ("23-11-2026", "ngày hai mươi ba tháng mười một năm hai nghìn không trăm hai mươi sáu"),
        ("23.11.2026", "ngày hai mươi ba tháng mười một năm hai nghìn không trăm hai mươi sáu"),
        ("23/11", "ngày hai mươi ba tháng mười một"),
        ("ngày 23/11", "ngày hai mươi ba tháng mười một"),
        (
            "Ngày 23/11/2026",
            "Ngày hai mươi ba tháng mười một năm hai nghìn không trăm hai mươi sáu",
        ),
        ("mùng 5/5", "mùng năm tháng năm"),
        ("đêm 24/4", "đêm ngày hai mươi tư tháng tư"),
        ("01/01/2027", "ngày một tháng một năm hai nghìn không trăm hai mươi bảy"),
        ("11/2026", "tháng mười một năm hai nghìn không trăm hai mươi sáu"),
        ("tháng 11/2026", "tháng mười một năm hai nghìn không trăm hai mươi sáu"),
        ("số 12/2025/NĐ-CP", "số mười hai/hai nghìn không trăm hai mươi lăm/NĐ-CP"),
        ("số 23/11", "số hai mươi ba/mười một"),
        ("32/13/2026", "ba mươi hai/mười ba/hai nghìn không trăm hai mươi sáu"),
        # times
        ("14:30", "mười bốn giờ ba mươi phút"),
        ("14h30", "mười bốn giờ ba mươi phút"),
        ("14h30'", "mười bốn giờ ba mươi phút"),
        ("14H30", "mười bốn giờ ba mươi phút"),
        ("14g30", "mười bốn giờ ba mươi phút"),
        ("14h", "mười bốn giờ"),
        ("14:00", "mười bốn giờ"),
        ("14h05", "mười bốn giờ năm phút"),
        ("14:30:15", "mười bốn giờ ba mươi phút mười lăm giây"),
        ("7 giờ 5 phút", "bảy giờ năm phút"),
        ("trong 24h qua", "trong hai mươi tư giờ qua"),
        # percentages and units
        ("30%", "ba mươi phần trăm"),
        ("30 %", "ba mươi phần trăm"),
        ("12,5%", "mười hai phẩy năm phần trăm"),
        ("50mm", "năm mươi mi li mét"),
        ("50 mm", "năm mươi mi li mét"),
        ("15cm", "mười lăm xăng ti mét"),
        ("3 km", "ba ki lô mét"),
        ("60 km/h", "sáu mươi ki lô mét trên giờ"),
        ("1.200 m3/s", "một nghìn hai trăm mét khối trên giây"),
        ("1.200 m³/s", "một nghìn hai trăm mét khối trên giây"),
        ("gió 15 m/s", "gió mười lăm mét trên giây"),
        ("25°C", "hai mươi lăm độ C"),
        ("25 °C", "hai mươi lăm độ C"),
        ("3m", "ba mét"),
        ("3 m", "ba mét"),
        ("3 m.", "ba mét."),
        ("500 ha lúa", "năm trăm héc ta lúa"),
        ("trong 2,5h", "trong hai phẩy năm giờ"),
        ("72 h tới", "bảy mươi hai giờ tới"),
        ("3 mét", "ba mét"),
        ("3 mưa", "ba mưa"),
        ("3\u00a0m", "ba mét"),
        # ranges
        ("100-200mm", "một trăm đến hai trăm mi li mét"),
        ("100 - 200 mm", "một trăm đến hai trăm mi li mét"),
        ("100–200 mm", "một trăm đến hai trăm mi li mét"),
        ("10-20%", "mười đến hai mươi phần trăm"),
        ("1.500-2.000 m3/s", "một nghìn năm trăm đến hai nghìn mét khối trên giây"),
        ("2020-2025", "hai nghìn không trăm hai mươi đến hai nghìn không trăm hai mươi lăm"),
        ("14h-16h", "mười bốn giờ đến mười sáu giờ"),
        ("7:00-9:30", "bảy giờ đến chín giờ ba mươi phút"),
        ("-5 - -3°C", "âm năm đến âm ba độ C"),
        ("23-25/11", "ngày hai mươi ba đến ngày hai mươi lăm tháng mười một"),
        ("ngày 23-25/11", "ngày hai mươi ba đến ngày hai mươi lăm tháng mười một"),
        (
            "23/11-25/11/2026",
            "ngày hai mươi ba tháng mười một đến ngày hai mươi lăm tháng mười một "
            "năm hai nghìn không trăm hai mươi sáu",
        ),
        (
            "23/11/2026-25/11/2026",
            "ngày hai mươi ba tháng mười một năm hai nghìn không trăm hai mươi sáu đến "
            "ngày hai mươi lăm tháng mười một năm hai nghìn không trăm hai mươi sáu",
        ),
        # untouched
        ("", ""),
        ("Không có số nào ở đây.", "Không có số nào ở đây."),
        (
            "Sơ tán ngay!  Đừng chủ quan.\nXin nhắc lại.",
            "Sơ tán ngay!  Đừng chủ quan.\nXin nhắc lại.",
        ),
        # a whole bulletin
        BULLETIN,
        (
            "Dự báo từ đêm 23/11 đến 25/11, mưa 150-300mm, có nơi trên 400mm; gió mạnh "
            "cấp 6, giật cấp 8 (39-61 km/h). Lưu lượng về hồ 1.250 m³/s.",
            "Dự báo từ đêm ngày hai mươi ba tháng mười một đến ngày hai mươi lăm tháng mười một, "
            "mưa một trăm năm mươi đến ba trăm mi li mét, có nơi trên bốn trăm mi li mét; gió "
            "mạnh cấp sáu, giật cấp tám (ba mươi chín đến sáu mươi mốt ki lô mét trên giờ). "
            "Lưu lượng về hồ một nghìn hai trăm năm mươi mét khối trên giây.",
        ),
    ],
)
def test_normalise(text: str, spoken: str) -> None:
    assert normalise(text) == spoken


def test_normalise_leaves_no_digits_and_is_idempotent() -> None:
    spoken = normalise(BULLETIN[0])
    assert not any(char.isdigit() for char in spoken)
    assert "  " not in spoken
    assert normalise(spoken) == spoken


def test_normalise_sees_day_word_in_decomposed_text() -> None:
    """Text pasted from some editors arrives in NFD; "ngày" must still be recognised."""
    text = unicodedata.normalize("NFD", "ngày 23/11")
    assert normalise(text) == unicodedata.normalize("NFD", "ngày ") + "hai mươi ba tháng mười một"
