"""Vietnamese bulletin text rewritten so the offline voice reads numbers as people say them.

espeak-ng's `vi` voice reads digits poorly: "2026" comes out digit by digit or with the
wrong unit words, "1.500.000" is taken for three numbers, "14h30" and "23/11" are spelt
out symbol by symbol, and "mm" is read as two letters. On a commune loudspeaker a flood
level or an evacuation time that is misread is worse than silence, so before synthesis
every number, date, time, percentage and common bulletin unit is rewritten in words.

Reading rules (northern broadcast standard):

* Integers: "nghìn" for thousands, "linh" for a zero tens digit (105 "một trăm linh năm"),
  "mốt" for 1 and "tư" for 4 only after a tens word of 20 or more (21 "hai mươi mốt",
  24 "hai mươi tư", but 11 "mười một", 14 "mười bốn", 101 "một trăm linh một"), "lăm"
  for 5 after any tens word (15 "mười lăm", 25 "hai mươi lăm", but 105 "... linh năm").
  A group of three digits after a larger one is read in full ("một nghìn không trăm linh
  năm"); groups that are all zeros are skipped, so 1_000_001 is "một triệu không trăm
  linh một" and 1_000_000 is "một triệu". 10^9 is "tỷ"; 10^12 is "một nghìn tỷ".
* Numerals are written the Vietnamese way: dots group thousands ("1.500.000", only when
  every group after the first has exactly three digits), a comma is the decimal mark
  ("12,75" "mười hai phẩy bảy mươi lăm"). Up to three decimals are read as a number after
  their leading zeros ("0,05" "không phẩy không năm"); longer fractions digit by digit.
  A digit string of four or more digits starting with 0 (a telephone number, a code) and
  any string longer than 15 digits are read digit by digit; "05 người" is "năm người",
  the zero padding of administrative style. A minus sign at the start of a word is "âm".
  After "tháng" a 4 is "tư"; after "thứ" a 4 is "tư" and a 1 is "nhất" ("thứ 4", "lần
  thứ 1").
* Dates "23/11/2026", "23-11-2026" and "23.11.2026" read "ngày hai mươi ba tháng mười
  một năm hai nghìn không trăm hai mươi sáu"; "23/11" drops the year; "11/2026" reads
  "tháng mười một năm ...". "ngày" (or "mùng", "mồng") already before the date, or
  "tháng" before a month/year, is not repeated. Month 4 is "tư" and month 1 is "một"
  ("tháng một": plain and unambiguous on air, where "giêng" is kept for the lunar
  calendar). Days are read as plain numbers ("ngày một", not "mùng một"). After "số"
  the slashes are a document number ("số 12/2025/NĐ-CP"), not a date, and only the
  numbers are read. A bare day/month such as "1/2" is always taken for a date.
* Times "14:30", "14h30", "14h30'", "14g30" read "mười bốn giờ ba mươi phút", "14h" and
  "14:00" read "mười bốn giờ", seconds ("14:30:15") add "giây".
* Ranges "100-200mm", "100 – 200 mm", "14h-16h", "23-25/11" read with "đến"; a bare day
  before a date becomes a date ("ngày hai mươi ba đến ngày hai mươi lăm tháng mười một").
* Units directly after a number (with or without a space): % "phần trăm", mm, cm, km,
  km/h, m/s, m3/s (m³/s), m2, m3, km2, ha, kg, h (hours), °C and a lone "m" ("mét"); see UNITS.

Everything else (letters, diacritics, punctuation, the original spacing) is left alone;
a space is added only where a reading would otherwise touch a letter ("QL1A" "QL một A").
Known limits: English separators ("1,500,000", "12.75") are not recognised, and a list
written "1,2,3" reads its first two items as a decimal.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable

__all__ = [
    "UNITS",
    "normalise",
    "read_date",
    "read_decimal",
    "read_digits",
    "read_integer",
    "read_time",
]

_DIGITS = ("không", "một", "hai", "ba", "bốn", "năm", "sáu", "bảy", "tám", "chín")
# Units after a tens word of 20 or more ("hai mươi mốt", "hai mươi tư", "hai mươi lăm").
_AFTER_MUOI = {1: "mốt", 4: "tư", 5: "lăm"}
_BILLION = 1_000_000_000
_GROUPS = ((1_000_000, "triệu"), (1_000, "nghìn"), (1, ""))
_MAX_INTEGER_DIGITS = 15  # beyond "trăm nghìn tỷ" a number is an identifier, read digit by digit

UNITS: dict[str, str] = {
    "%": "phần trăm",
    "km/h": "ki lô mét trên giờ",
    "m3/s": "mét khối trên giây",
    "m³/s": "mét khối trên giây",
    "m/s": "mét trên giây",
    "km2": "ki lô mét vuông",
    "km²": "ki lô mét vuông",
    "m3": "mét khối",
    "m³": "mét khối",
    "m2": "mét vuông",
    "m²": "mét vuông",
    "mm": "mi li mét",
    "cm": "xăng ti mét",
    "km": "ki lô mét",
    "ha": "héc ta",
    "kg": "ki lô gam",
    "h": "giờ",  # a duration ("2,5h", "72 h"); a clock time like "14h" is read as a time first
    "°C": "độ C",
    "ºC": "độ C",
    "℃": "độ C",
    "°": "độ",
    "m": "mét",
}


# --- numbers -----------------------------------------------------------------------------


def _read_group(n: int, full: bool) -> str:
    """Read 1..999; `full` when a larger group precedes, so hundreds and "linh" are spoken."""
    hundreds, rest = divmod(n, 100)
    tens, units = divmod(rest, 10)
    words: list[str] = []
    if full or hundreds:
        words += [_DIGITS[hundreds], "trăm"]
    if tens == 0:
        if units:
            if words:
                words.append("linh")
            words.append(_DIGITS[units])
    elif tens == 1:
        words.append("mười")
        if units:
            words.append("lăm" if units == 5 else _DIGITS[units])
    else:
        words += [_DIGITS[tens], "mươi"]
        if units:
            words.append(_AFTER_MUOI.get(units, _DIGITS[units]))
    return " ".join(words)


def _read_positive(n: int) -> str:
    words: list[str] = []
    full = False
    if n >= _BILLION:
        head, n = divmod(n, _BILLION)
        words += [_read_positive(head), "tỷ"]
        full = True
    for size, name in _GROUPS:
        group, n = divmod(n, size)
        if group:
            words.append(_read_group(group, full))
            if name:
                words.append(name)
            full = True
    return " ".join(words)


def read_integer(n: int) -> str:
    """2026 -> "hai nghìn không trăm hai mươi sáu"; -5 -> "âm năm"."""
    if n < 0:
        return f"âm {read_integer(-n)}"
    if n == 0:
        return _DIGITS[0]
    return _read_positive(n)


def read_digits(digits: str) -> str:
    """ "0912" -> "không chín một hai": telephone numbers, codes, long fractions."""
    if not digits.isascii() or not digits.isdigit():
        raise ValueError(f"not a string of digits: {digits!r}")
    return " ".join(_DIGITS[int(d)] for d in digits)


def _read_whole(digits: str) -> str:
    if len(digits) > _MAX_INTEGER_DIGITS or (len(digits) >= 4 and digits[0] == "0"):
        return read_digits(digits)
    return read_integer(int(digits))


def _read_fraction(digits: str) -> str:
    if len(digits) > 3:
        return read_digits(digits)
    significant = digits.lstrip("0")
    words = [_DIGITS[0]] * (len(digits) - len(significant))
    if significant:
        words.append(read_integer(int(significant)))
    return " ".join(words)


_SIGNS = "-−"  # hyphen-minus and U+2212
_NUMERAL = r"(?:[0-9]{1,3}(?:\.[0-9]{3})+(?![0-9])|[0-9]+)(?:,[0-9]+)?"
_NUMERAL_RE = re.compile(rf"[{_SIGNS}]?{_NUMERAL}")


def read_decimal(numeral: str) -> str:
    """A numeral written the Vietnamese way: "1.500.000" -> "một triệu năm trăm nghìn",
    "12,75" -> "mười hai phẩy bảy mươi lăm", "-5" -> "âm năm"."""
    if not _NUMERAL_RE.fullmatch(numeral):
        raise ValueError(f"not a Vietnamese numeral: {numeral!r}")
    sign = ""
    if numeral[0] in _SIGNS:
        sign, numeral = "âm ", numeral[1:]
    whole, _, fraction = numeral.partition(",")
    words = _read_whole(whole.replace(".", ""))
    if fraction:
        words += f" phẩy {_read_fraction(fraction)}"
    return sign + words


# --- dates and times ---------------------------------------------------------------------


def _read_month(month: int) -> str:
    return "tư" if month == 4 else read_integer(month)


def read_date(day: int | None, month: int, year: int | None = None, *, prefix: bool = True) -> str:
    """(23, 11, 2026) -> "ngày hai mươi ba tháng mười một năm hai nghìn không trăm hai mươi
    sáu". Without a day it starts at "tháng"; `prefix=False` leaves out the leading "ngày"
    or "tháng" when the text already says it."""
    if not 1 <= month <= 12 or (day is not None and not 1 <= day <= 31):
        raise ValueError(f"no such date: day {day}, month {month}")
    words: list[str] = []
    if day is not None:
        words += ["ngày", read_integer(day)]
    words += ["tháng", _read_month(month)]
    if year is not None:
        words += ["năm", read_integer(year)]
    return " ".join(words[1:] if not prefix else words)


def read_time(hour: int, minute: int = 0, second: int = 0) -> str:
    """(14, 30) -> "mười bốn giờ ba mươi phút"; whole hours drop "không phút"."""
    if not (0 <= hour <= 24 and 0 <= minute <= 59 and 0 <= second <= 59):
        raise ValueError(f"no such time: {hour}:{minute:02}:{second:02}")
    words = [read_integer(hour), "giờ"]
    if minute or second:
        words += [read_integer(minute), "phút"]
    if second:
        words += [read_integer(second), "giây"]
    return " ".join(words)


# --- finding them in text ----------------------------------------------------------------

_SPACE = "[ \u00a0\u202f]?"  # at most one space (or a no-break space) inside a token
_SIGN = rf"(?:(?<![\w.,)\]])[{_SIGNS}])?"  # a minus at the start of a word
_DAY = "(?:0?[1-9]|[12][0-9]|3[01])"
_MONTH = "(?:0?[1-9]|1[0-2])"
_YEAR = "[0-9]{4}"
_HOUR = "(?:[01]?[0-9]|2[0-4])"
_MINUTE = "[0-5][0-9]"
_UNIT = "|".join(re.escape(u) for u in sorted(UNITS, key=len, reverse=True))

_DATE_FULL = (
    rf"(?<![0-9])(?:{_DAY}/{_MONTH}/{_YEAR}|{_DAY}-{_MONTH}-{_YEAR}|{_DAY}\.{_MONTH}\.{_YEAR})"
    r"(?![0-9/])"
)
_DATE_SHORT = rf"(?<![0-9]){_DAY}/{_MONTH}(?![0-9/])"
_MONTH_YEAR = rf"(?<![0-9]){_MONTH}/{_YEAR}(?![0-9/])"
_TIME = (
    rf"(?<![0-9]){_HOUR}(?:"
    rf":{_MINUTE}(?::{_MINUTE})?(?![0-9:])"
    rf"|[hH](?:{_MINUTE}(?:['’]|ph?(?!\w))?)?(?!\w)"
    rf"|[gG]{_MINUTE}(?!\w)"
    r")"
)
_MEASURE = rf"{_NUMERAL}(?:{_SPACE}(?:{_UNIT})(?!\w))?"
_RANGE_END = rf"(?:{_DATE_FULL}|{_DATE_SHORT}|{_TIME}|{_MEASURE})"
_DASH = f"{_SPACE}[-–]{_SPACE}"
_RANGE = rf"(?P<a>{_SIGN}{_RANGE_END}){_DASH}(?P<b>[{_SIGNS}]?{_RANGE_END})"

# Tried left to right at each position, first match wins: a full date before a range (so
# "23-11-2026" is not "23 to 11"), unless a second full date follows the dash.
_TOKEN = re.compile(
    "|".join(
        [
            rf"(?P<date>{_DATE_FULL}(?!{_DASH}{_DATE_FULL}))",
            rf"(?P<range>{_RANGE})",
            rf"(?P<date_short>{_DATE_SHORT})",
            rf"(?P<month_year>{_MONTH_YEAR})",
            rf"(?P<time>{_TIME})",
            rf"(?P<measure>{_SIGN}{_NUMERAL}{_SPACE}(?:{_UNIT})(?!\w))",
            rf"(?P<number>{_SIGN}{_NUMERAL})",
        ]
    )
)
_RANGE_RE = re.compile(_RANGE)
_MEASURE_RE = re.compile(rf"(?P<numeral>[{_SIGNS}]?{_NUMERAL}){_SPACE}(?P<unit>{_UNIT})")
_ANY_DATE_RE = re.compile(rf"{_DATE_FULL}|{_DATE_SHORT}")
_BARE_DAY_RE = re.compile(_DAY)
_INTEGER_RE = re.compile("[0-9]+")

_CONTEXT_CHARS = 24  # enough to see the word before a token
_DAY_WORD_BEFORE = re.compile(r"\b(?:ngày|mùng|mồng)\s*$", re.IGNORECASE)
_MONTH_WORD_BEFORE = re.compile(r"\btháng\s*$", re.IGNORECASE)
_NUMBER_WORD_BEFORE = re.compile(r"\bsố\s*$", re.IGNORECASE)
_ORDINAL_BEFORE = re.compile(r"\bthứ\s*$", re.IGNORECASE)


def _before(context: str, pattern: re.Pattern[str]) -> bool:
    return pattern.search(unicodedata.normalize("NFC", context)) is not None


def _numbers_only(token: str) -> str:
    """A document number such as "12/2025": the numbers in words, the slashes kept."""
    return _INTEGER_RE.sub(lambda m: _read_whole(m.group()), token)


def _integers(token: str) -> list[int]:
    return [int(d) for d in _INTEGER_RE.findall(token)]


def _date(token: str, context: str) -> str:
    if _before(context, _NUMBER_WORD_BEFORE):
        return _numbers_only(token)
    day, month, year = _integers(token)
    return read_date(day, month, year, prefix=not _before(context, _DAY_WORD_BEFORE))


def _date_short(token: str, context: str) -> str:
    if _before(context, _NUMBER_WORD_BEFORE):
        return _numbers_only(token)
    day, month = _integers(token)
    return read_date(day, month, prefix=not _before(context, _DAY_WORD_BEFORE))


def _month_year(token: str, context: str) -> str:
    if _before(context, _NUMBER_WORD_BEFORE):
        return _numbers_only(token)
    month, year = _integers(token)
    return read_date(None, month, year, prefix=not _before(context, _MONTH_WORD_BEFORE))


def _time(token: str, context: str) -> str:
    return read_time(*_integers(token))


def _measure(token: str, context: str) -> str:
    match = _MEASURE_RE.fullmatch(token)
    assert match is not None, token
    return f"{_number(match['numeral'], context)} {UNITS[match['unit']]}"


def _number(token: str, context: str) -> str:
    if token.isdigit() and len(token) <= 2:
        if token.lstrip("0") == "4" and (
            _before(context, _MONTH_WORD_BEFORE) or _before(context, _ORDINAL_BEFORE)
        ):
            return "tư"
        if token.lstrip("0") == "1" and _before(context, _ORDINAL_BEFORE):
            return "nhất"
    return read_decimal(token)


def _range(token: str, context: str) -> str:
    match = _RANGE_RE.fullmatch(token)
    assert match is not None, token
    first, last = match["a"], match["b"]
    if _ANY_DATE_RE.fullmatch(last) and _BARE_DAY_RE.fullmatch(first):
        # "23-25/11": the first day of a span of dates.
        start = read_integer(int(first))
        if not _before(context, _DAY_WORD_BEFORE):
            start = f"ngày {start}"
    else:
        start = _rewrite(first, context)
    return f"{start} đến {_rewrite(last, 'đến ')}"


_READERS: dict[str, Callable[[str, str], str]] = {
    "date": _date,
    "range": _range,
    "date_short": _date_short,
    "month_year": _month_year,
    "time": _time,
    "measure": _measure,
    "number": _number,
}


def _is_word_char(char: str) -> bool:
    return char.isalnum() or char == "_" or unicodedata.category(char).startswith("M")


def _rewrite(text: str, context: str = "") -> str:
    def replace(match: re.Match[str]) -> str:
        start, end = match.span()
        before = (context + text[max(0, start - _CONTEXT_CHARS) : start])[-_CONTEXT_CHARS:]
        kind = match.lastgroup
        assert kind is not None
        words = _READERS[kind](match.group(), before)
        if start > 0 and _is_word_char(text[start - 1]):
            words = " " + words
        if end < len(text) and _is_word_char(text[end]):
            words += " "
        return words

    return _TOKEN.sub(replace, text)


def normalise(text: str) -> str:
    """Rewrite the numbers, dates, times, ranges, percentages and units of a Vietnamese
    bulletin in words, leaving everything else as written."""
    return _rewrite(text)
