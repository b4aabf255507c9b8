"""Reading KRA iCMS maintenance notices as staff paste them.

Pure: text (and ``now``) in, a :class:`MaintenanceNotice` or a :class:`NoticeParseError` out. No clock,
no I/O. Times in notices are East Africa Time (Africa/Nairobi, UTC+3, no DST); the result is in UTC.

How a notice is read:

1. Dates and times are found as tokens with their positions (dates first, so a year is never read as
   a time). Positions refer to the text as pasted: normalising dashes and odd spaces keeps lengths.
2. The start and end times are chosen: after ``START:`` / ``END:`` labels when present, else the first
   time after "from" / "between" / "begin…" in the same sentence and the time after it, else the first
   two times. Restatements such as ``12:00 PM (noon)`` count once; times labelled GMT/UTC are ignored.
3. The text between the two times is split at the first separator ("to", "until", "and", "-", …).
   A date on the start side nearest the start time is the start date; one on the end side nearest the
   end time is the end date. With no end date the end is on the start date, or the next day when it is
   not after the start.
4. A missing year is the next occurrence of that date (a date that passed more than a day ago is next
   year's). A named weekday that does not match the date gives a warning, not an error.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import TypeVar
from zoneinfo import ZoneInfo

__all__ = [
    "EAT",
    "MAX_WINDOW",
    "MaintenanceNotice",
    "NoticeParseError",
    "parse_notice",
    "parse_window_spec",
]

EAT = ZoneInfo("Africa/Nairobi")
MAX_WINDOW = timedelta(days=7)
MAX_NOTICE_CHARS = 20_000
_T = TypeVar("_T")


@dataclass(frozen=True)
class MaintenanceNotice:
    starts_at: datetime  # aware, UTC
    ends_at: datetime  # aware, UTC
    warnings: tuple[str, ...] = ()


class NoticeParseError(ValueError):
    """The notice could not be read. ``part`` names what could not be read; ``str(exc)`` says so to staff.

    Parts: "notice" (empty or too long), "start date", "end date", "start time", "end time", "window".
    """

    def __init__(self, message: str, part: str = "notice") -> None:
        super().__init__(message)
        self.part = part

    def __reduce__(self) -> tuple[type[NoticeParseError], tuple[str, str]]:
        return (type(self), (str(self), self.part))


# --------------------------------------------------------------------------------------------------
# Vocabulary

_WEEKDAYS = {
    "monday": 0, "mon": 0,
    "tuesday": 1, "tues": 1, "tue": 1,
    "wednesday": 2, "wed": 2,
    "thursday": 3, "thurs": 3, "thur": 3, "thu": 3,
    "friday": 4, "fri": 4,
    "saturday": 5, "sat": 5,
    "sunday": 6, "sun": 6,
}  # fmt: skip
_MONTHS = {
    "january": 1, "jan": 1, "february": 2, "feb": 2, "march": 3, "mar": 3, "april": 4, "apr": 4,
    "may": 5, "june": 6, "jun": 6, "july": 7, "jul": 7, "august": 8, "aug": 8,
    "september": 9, "sept": 9, "sep": 9, "october": 10, "oct": 10, "november": 11, "nov": 11,
    "december": 12, "dec": 12,
}  # fmt: skip
_WEEKDAY_NAMES = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_MONTH_NAMES = (
    "January", "February", "March", "April", "May", "June",
    "July", "August", "September", "October", "November", "December",
)  # fmt: skip


def _alternation(words: dict[str, int]) -> str:
    return "(?:" + "|".join(sorted(words, key=len, reverse=True)) + ")"


_WD = _alternation(_WEEKDAYS)
_MON = _alternation(_MONTHS)

# Same length in, same length out: positions found in the normalised text are positions in the original.
_NORMALISE = str.maketrans(
    {
        **dict.fromkeys("\u2010\u2011\u2012\u2013\u2014\u2015\u2212\ufe58\ufe63\uff0d", "-"),
        **dict.fromkeys("\u00a0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009", " "),
        **dict.fromkeys("\u200a\u200b\u202f\u205f\u3000\ufeff", " "),
        **dict.fromkeys("\u2018\u2019\u201b\u2032", "'"),
        "\uff1a": ":",
    }
)
_FLAGS = re.IGNORECASE | re.ASCII

# --------------------------------------------------------------------------------------------------
# Date patterns

# A number that is a time, not a day of the month ("4:00", "10 pm", "0400hrs", "6 hours").
_NOT_TIME_AFTER = r"(?![0-9]|[:.][0-9]|\s*[ap]\.?\s?m\b|\s*(?:hrs?|hours|h|noon|midnight)\b)"
_RANGE_SEP = r"(?:\s*(?:-|&)\s*|\s+(?:to|until|till|through|thru|and)\s+)"


def _wd_prefix(name: str) -> str:
    return rf"(?:(?P<{name}>{_WD})\b\.?,?\s+(?:the\s+)?)?"


def _wd_suffix(name: str) -> str:
    return rf"(?:\s*\(\s*(?P<{name}>{_WD})\s*\))?"


def _day(name: str) -> str:
    return rf"(?<![0-9:./])(?P<{name}>[0-9]{{1,2}})(?:st|nd|rd|th)?{_NOT_TIME_AFTER}"


def _year(name: str) -> str:
    return rf"(?P<{name}>20[0-9]{{2}})(?![0-9]|[:.][0-9]|\s*(?:hrs?|hours|h)\b)"


_MONTH = rf"(?P<mon>{_MON})\b\.?"
_OPT_YEAR = rf"(?:,?[\s\-]*{_year('year')})?"

_DATE_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    (
        "iso",
        re.compile(
            _wd_prefix("wd")
            + r"(?<![0-9])(?P<year>[0-9]{4})(?P<s>[-/])(?P<month>[0-9]{1,2})(?P=s)"
            + r"(?P<day>[0-9]{1,2})(?![0-9])"
            + _wd_suffix("wda"),
            _FLAGS,
        ),
    ),
    (
        "numeric",  # day first, as in Kenya and the UK: 17/05/2025, 17-05-2025, 17.05.2025, 17/05/25
        re.compile(
            _wd_prefix("wd")
            + r"(?<![0-9:./])(?P<day>[0-9]{1,2})(?P<s>[-/.])(?P<month>[0-9]{1,2})(?P=s)"
            + r"(?:(?P<year>[0-9]{4})|(?<=/)(?P<yy>[0-9]{2}))(?![0-9]|[:.][0-9])"
            + _wd_suffix("wda"),
            _FLAGS,
        ),
    ),
    (
        "day-range",  # 17th-18th May 2025, Saturday 17 to Sunday 18 May
        re.compile(
            _wd_prefix("wd1")
            + _day("d1")
            + r"(?:\s+of)?"
            + _RANGE_SEP
            + _wd_prefix("wd2")
            + _day("d2")
            + r"(?:\s+of)?[\s\-]*"
            + _MONTH
            + _OPT_YEAR,
            _FLAGS,
        ),
    ),
    (
        "month-range",  # May 17-18, 2025
        re.compile(
            _wd_prefix("wd1")
            + _MONTH
            + r",?[\s\-]*"
            + _day("d1")
            + _RANGE_SEP
            + _wd_prefix("wd2")
            + _day("d2")
            + _OPT_YEAR,
            _FLAGS,
        ),
    ),
    (
        "day-month",  # Sunday 14th March 2027, 14 Mar, the 14th of March, 14-Mar-2027
        re.compile(
            _wd_prefix("wd") + _day("day") + r"(?:\s+of)?[\s\-]*" + _MONTH + _OPT_YEAR + _wd_suffix("wda"),
            _FLAGS,
        ),
    ),
    (
        "month-day",  # Saturday, May 17, 2025; July 13
        re.compile(
            _wd_prefix("wd") + _MONTH + r",?[\s\-]*" + _day("day") + _OPT_YEAR + _wd_suffix("wda"),
            _FLAGS,
        ),
    ),
    ("relative", re.compile(r"\b(?P<rel>today|tonight|tomorrow)\b", _FLAGS)),
)
_MERGE_SEP = re.compile(r",?" + _RANGE_SEP, _FLAGS)
_WEEKDAY_WORD = re.compile(rf"\b{_WD}\b", _FLAGS)

# --------------------------------------------------------------------------------------------------
# Time patterns

_HB = r"(?<![0-9:.,/])"  # an hour does not continue a number
_MER = r"\s*(?P<mer>[ap])\.?\s?m\b\.?"
_HRS = r"(?:\s*(?:hrs?|hours|h)\b\.?)"
_TIME_SEP = r"(?:\s*-\s*|\s+(?:to|until|till|and)\s+)"

_TIME_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    # "4 to 10 a.m.", "10.00 - 11.30 pm": the first time shares the second's am/pm
    (
        "pair",
        re.compile(
            _HB
            + r"(?P<h1>[0-9]{1,2})(?:[:.](?P<m1>[0-9]{2}))?"
            + _TIME_SEP
            + r"(?P<h2>[0-9]{1,2})(?:[:.](?P<m2>[0-9]{2}))?"
            + _MER,
            _FLAGS,
        ),
    ),
    # "2200 to 0600hrs"
    (
        "pair",
        re.compile(
            _HB
            + r"(?P<h1>[0-9]{2})(?P<m1>[0-9]{2})"
            + _HRS
            + "?"
            + _TIME_SEP
            + r"(?P<h2>[0-9]{2})(?P<m2>[0-9]{2})"
            + _HRS,
            _FLAGS,
        ),
    ),
    ("single", re.compile(_HB + r"(?P<h>[0-9]{1,2})(?:[:.](?P<m>[0-9]{2}))?" + _MER, _FLAGS)),  # 4:00 a.m.
    ("single", re.compile(_HB + r"(?P<h>[0-9]{1,2}):(?P<m>[0-9]{2})(?![0-9])" + _HRS + "?", _FLAGS)),  # 22:00
    ("single", re.compile(_HB + r"(?P<h>[0-9]{2})\.(?P<m>[0-9]{2})(?![0-9]|\.[0-9])" + _HRS + "?", _FLAGS)),
    ("single", re.compile(_HB + r"(?P<h>[0-9])\.(?P<m>[0-9]{2})" + _HRS, _FLAGS)),  # 4.00hrs
    ("single", re.compile(_HB + r"(?P<h>[0-9]{2})(?P<m>[0-9]{2})" + _HRS, _FLAGS)),  # 0400hrs
    ("single", re.compile(_HB + r"(?P<h>[0-9]{1,2})h(?P<m>[0-9]{2})(?![0-9])", _FLAGS)),  # 22h00
    (
        "word",
        re.compile(
            r"(?:(?<![0-9:.,/])12(?:[:.]00)?\s*)?(?<![a-z])(?P<word>noon|midday|mid-day|midnight)\b", _FLAGS
        ),
    ),
)
_FOREIGN_LABEL = re.compile(
    r"\s*\(?\s*(?:(?:gmt|utc)(?!\s*\+\s*0?3\b)|bst|uk\s+time|london\s+time)\b", _FLAGS
)
_RESTATEMENT_GAP = re.compile(r"\s*[(\[/]?\s*")

# --------------------------------------------------------------------------------------------------
# Structure words

_START_LABEL = re.compile(
    r"\b(?:start(?:s|ing)?|begin(?:s|ning)?)(?:\s+(?:date|time))?(?:\s*(?:/|and|&)\s*(?:date|time))?\s*[:=]",
    _FLAGS,
)
_END_LABEL = re.compile(
    r"\b(?:end(?:s|ing)?|finish(?:es|ing)?)(?:\s+(?:date|time))?"
    r"(?:\s*(?:/|and|&)\s*(?:date|time))?\s*[:=]",
    _FLAGS,
)
_ANCHOR = re.compile(r"\b(?:from|between|begin\w*|start\w*|commenc\w*)\b", _FLAGS)
_SEPARATOR = re.compile(r"\b(?:to|until|till|til|through|thru|and|end\w*|conclud\w*|finish\w*)\b|-|>", _FLAGS)
_SENTENCE_BREAK = re.compile(r"[.!?](?:\s|$)|\n\s*\n")
_AFTER_END_REACH = 80  # how far after the end time a date may still belong to it


# --------------------------------------------------------------------------------------------------
# Tokens


@dataclass(frozen=True)
class _DateSpec:
    day: int
    month: int
    year: int | None
    weekday: int | None = None
    fixed: date | None = None  # "today", "tomorrow": already a date


@dataclass(frozen=True)
class _DateTok:
    start: int
    end: int
    first: _DateSpec
    second: _DateSpec | None = None  # the last day of a range ("17th-18th May")


@dataclass(frozen=True)
class _TimeTok:
    start: int
    end: int
    hour: int
    minute: int
    next_day: bool  # "24:00"
    valid: bool

    @property
    def value(self) -> tuple[int, int, bool]:
        return (self.hour, self.minute, self.next_day)


def _gap(a: _DateTok | _TimeTok, b: _DateTok | _TimeTok) -> int:
    return b.start - a.end if a.end <= b.start else a.start - b.end


def _pick_non_overlapping(candidates: list[tuple[int, int, _T]], taken: list[tuple[int, int]]) -> list[_T]:
    """Earliest first, then longest; a candidate overlapping one already taken is dropped."""
    chosen: list[_T] = []
    spans = list(taken)
    for start, end, item in sorted(candidates, key=lambda c: (c[0], -(c[1] - c[0]))):
        if any(start < e and s < end for s, e in spans):
            continue
        spans.append((start, end))
        chosen.append(item)
    return chosen


def _weekday(m: re.Match[str], *names: str) -> int | None:
    for name in names:
        word = m.groupdict().get(name)
        if word:
            return _WEEKDAYS[word.lower()]
    return None


def _find_dates(norm: str, today: date) -> list[_DateTok]:
    candidates: list[tuple[int, int, _DateTok]] = []
    for kind, pattern in _DATE_PATTERNS:
        for m in pattern.finditer(norm):
            g = m.groupdict()
            year = int(g["year"]) if g.get("year") else None
            tok: _DateTok
            if kind in ("iso", "numeric"):
                if g.get("yy"):
                    year = 2000 + int(g["yy"])
                spec = _DateSpec(int(g["day"]), int(g["month"]), year, _weekday(m, "wd", "wda"))
                tok = _DateTok(m.start(), m.end(), spec)
            elif kind in ("day-range", "month-range"):
                d1, d2, month = int(g["d1"]), int(g["d2"]), _MONTHS[g["mon"].lower()]
                if d2 <= d1:
                    continue  # "July 13 - 4 to 10 am" is a date and a pair of times, not a range
                first = _DateSpec(d1, month, year, _weekday(m, "wd1"))
                tok = _DateTok(m.start(), m.end(), first, _DateSpec(d2, month, year, _weekday(m, "wd2")))
            elif kind == "relative":
                fixed = today + timedelta(days=1 if g["rel"].lower() == "tomorrow" else 0)
                tok = _DateTok(m.start(), m.end(), _DateSpec(fixed.day, fixed.month, fixed.year, None, fixed))
            else:
                spec = _DateSpec(int(g["day"]), _MONTHS[g["mon"].lower()], year, _weekday(m, "wd", "wda"))
                tok = _DateTok(m.start(), m.end(), spec)
            candidates.append((m.start(), m.end(), tok))
    found = sorted(_pick_non_overlapping(candidates, []), key=lambda t: t.start)
    # "Saturday 17 May to Sunday 18 May 2025": two dates joined by a separator are a range.
    merged: list[_DateTok] = []
    for tok in found:
        prev = merged[-1] if merged else None
        if (
            prev is not None
            and prev.second is None
            and tok.second is None
            and prev.first.fixed is None
            and tok.first.fixed is None
            and _MERGE_SEP.fullmatch(norm, prev.end, tok.start)
        ):
            merged[-1] = _DateTok(prev.start, tok.end, prev.first, tok.first)
        else:
            merged.append(tok)
    return merged


def _make_time(start: int, end: int, hour: int, minute: int, mer: str | None) -> _TimeTok:
    valid = 0 <= minute <= 59
    next_day = False
    if mer:
        mer = mer.lower()
        if mer == "a":
            if hour == 12:
                hour = 0
            elif hour > 12:
                valid = False
        elif hour == 0 or hour > 23:
            valid = False
        elif hour < 12:
            hour += 12
    elif hour == 24 and minute == 0:
        hour, next_day = 0, True
    elif hour > 23:
        valid = False
    if not valid:
        hour, minute = 0, 0
    return _TimeTok(start, end, hour, minute, next_day, valid)


def _pair(m: re.Match[str]) -> tuple[_TimeTok, _TimeTok]:
    g = m.groupdict()
    h1, m1 = int(g["h1"]), int(g["m1"] or 0)
    h2, m2 = int(g["h2"]), int(g["m2"] or 0)
    mer = g.get("mer")
    first_end = m.end("m1") if g["m1"] else m.end("h1")
    second = _make_time(m.start("h2"), m.end(), h2, m2, mer)
    if mer is None or h1 > 12 or h1 == 0:
        first = _make_time(m.start(), first_end, h1, m1, None)
    else:
        first = _make_time(m.start(), first_end, h1, m1, mer)
        if first.valid and second.valid and (first.hour, first.minute) > (second.hour, second.minute):
            # "10 to 6 am" is 10 pm to 6 am; "11 to 2 pm" is 11 am to 2 pm
            first = _make_time(m.start(), first_end, h1, m1, "p" if mer.lower() == "a" else "a")
    return first, second


def _find_times(norm: str, dates: list[_DateTok]) -> tuple[list[_TimeTok], list[_TimeTok]]:
    """The times in the notice, and the ones left out because they were labelled GMT/UTC."""
    candidates: list[tuple[int, int, tuple[_TimeTok, ...]]] = []
    for kind, pattern in _TIME_PATTERNS:
        for m in pattern.finditer(norm):
            g = m.groupdict()
            toks: tuple[_TimeTok, ...]
            if kind == "pair":
                toks = _pair(m)
            elif kind == "word":
                noon = g["word"].lower() in ("noon", "midday", "mid-day")
                toks = (_TimeTok(m.start(), m.end(), 12 if noon else 0, 0, False, True),)
            else:
                toks = (_make_time(m.start(), m.end(), int(g["h"]), int(g["m"] or 0), g.get("mer")),)
            candidates.append((m.start(), m.end(), toks))
    picked = _pick_non_overlapping(candidates, [(d.start, d.end) for d in dates])
    times = sorted((t for toks in picked for t in toks), key=lambda t: t.start)
    kept: list[_TimeTok] = []
    foreign: list[_TimeTok] = []
    for tok in times:
        if _FOREIGN_LABEL.match(norm, tok.end):
            foreign.append(tok)
            continue
        prev = kept[-1] if kept else None
        if (
            prev is not None
            and prev.value == tok.value
            and _RESTATEMENT_GAP.fullmatch(norm, prev.end, tok.start)
        ):
            continue  # "12:00 PM (noon)", "10 pm (22:00 hrs)"
        kept.append(tok)
    return kept, foreign


# --------------------------------------------------------------------------------------------------
# Messages


def _quote(text: str, tok: _DateTok | _TimeTok) -> str:
    return '"' + " ".join(text[tok.start : tok.end].split()) + '"'


def _date_words(d: date) -> str:
    return f"{d.day} {_MONTH_NAMES[d.month - 1]} {d.year}"


def _when_words(local: datetime) -> str:
    clock = f"{local.hour:02d}:{local.minute:02d}"
    return f"{_WEEKDAY_NAMES[local.weekday()]} {_date_words(local.date())}, {clock} EAT"


# --------------------------------------------------------------------------------------------------
# Choosing the start and end


@dataclass(frozen=True)
class _Frame:
    first: _TimeTok
    second: _TimeTok
    lo: int  # dates before this are not the window's (text before a START: label)
    split: int  # dates before this belong to the start, after it to the end
    labelled: bool


def _masked(norm: str, dates: list[_DateTok], times: list[_TimeTok]) -> str:
    chars = list(norm)
    for tok in (*dates, *times):
        chars[tok.start : tok.end] = "#" * (tok.end - tok.start)
    return "".join(chars)


def _choose_times(text: str, masked: str, times: list[_TimeTok], dates: list[_DateTok]) -> _Frame:
    start_label = _START_LABEL.search(masked)
    end_label = _END_LABEL.search(masked, start_label.end()) if start_label else None
    if start_label and end_label:
        first = next((t for t in times if start_label.end() <= t.start and t.end <= end_label.start()), None)
        second = next((t for t in times if t.start >= end_label.end()), None)
        if first is not None and second is not None:
            return _Frame(first, second, start_label.start(), end_label.start(), True)
        # Labels without times in them ("START: 14 March END: 15 March, 22:00 to 06:00"): read as prose.

    if not times:
        raise NoticeParseError(
            'I could not find a start time in the notice (for example "10 pm" or "22:00").', "start time"
        )
    pair: tuple[_TimeTok, _TimeTok] | None = None
    for anchor in _ANCHOR.finditer(masked):
        later = [t for t in times if t.start >= anchor.end()]
        if len(later) >= 2 and not _SENTENCE_BREAK.search(masked, anchor.end(), later[0].start):
            pair = (later[0], later[1])
            break
    if pair is None:
        if len(times) < 2:
            raise NoticeParseError(
                f"I found the start time {_quote(text, times[0])} but could not find an end time "
                "in the notice.",
                "end time",
            )
        pair = (times[0], times[1])
    first, second = pair
    sep = _SEPARATOR.search(masked, first.end, second.start)
    if sep is not None:
        split = sep.start()
    elif any(d.end <= first.start for d in dates):
        split = first.end  # "Saturday 17 May 22:00 Sunday 18 May 06:00"
    else:
        split = second.start  # "22:00 Saturday 17 May 06:00 Sunday 18 May"
    return _Frame(first, second, 0, split, False)


def _choose_dates(
    text: str, masked: str, frame: _Frame, dates: list[_DateTok], times: list[_TimeTok]
) -> tuple[_DateTok, _DateTok | None, bool]:
    """The start date token, the end date token if the notice gives one, and whether the one date
    came after both times ("between 22:00 and 06:00 on 14 March")."""
    t1, t2 = frame.first, frame.second
    others = [t for t in times if t is not t1 and t is not t2]

    def owned_by(d: _DateTok, t: _TimeTok) -> bool:
        return all(_gap(d, t) <= _gap(d, o) for o in others)

    start_side = [
        d
        for d in dates
        if d.start >= frame.lo
        and ((d.end <= t1.start and owned_by(d, t1)) or (d.start >= t1.end and d.end <= frame.split))
    ]
    end_between = [d for d in dates if d.start >= frame.split and d.end <= t2.start]
    end_after = [  # after END: a date anywhere later is the end's; in prose only one close by, same sentence
        d
        for d in dates
        if d.start >= t2.end
        and owned_by(d, t2)
        and (
            frame.labelled
            or (d.start - t2.end <= _AFTER_END_REACH and not _SENTENCE_BREAK.search(masked, t2.end, d.start))
        )
    ]

    def nearest(cands: list[_DateTok], t: _TimeTok) -> _DateTok | None:
        return min(cands, key=lambda d: (_gap(d, t), d.start > t.start), default=None)

    start_tok = nearest(start_side, t1)
    if start_tok is not None:
        return start_tok, nearest(end_between + end_after, t2), False
    if end_between:
        raise NoticeParseError(
            f"I found the end date {_quote(text, end_between[0])} but no start date in the notice.",
            "start date",
        )
    shared = nearest(end_after, t2)
    if shared is not None:
        return shared, None, True
    weekday = _WEEKDAY_WORD.search(masked)
    if weekday is not None:
        name = _WEEKDAY_NAMES[_WEEKDAYS[weekday.group(0).lower()]]
        raise NoticeParseError(
            f'The notice names {name} but gives no date; please include the date (for example "{name} '
            f'17 May 2025").',
            "start date",
        )
    raise NoticeParseError(
        'I could not find a start date in the notice (for example "Sunday 13 July 2025").', "start date"
    )


# --------------------------------------------------------------------------------------------------
# Resolving dates


def _concrete(spec: _DateSpec, year: int, text: str, tok: _DateTok, part: str) -> date:
    if spec.fixed is not None:
        return spec.fixed
    if not 2000 <= year <= 2099:
        raise NoticeParseError(
            f"I could not read the {part} {_quote(text, tok)}: the year looks wrong.", part
        )
    try:
        return date(year, spec.month, spec.day)
    except ValueError:
        raise NoticeParseError(
            f"I could not read the {part} {_quote(text, tok)}: there is no such date.", part
        ) from None


def _next_occurrence(spec: _DateSpec, today: date, text: str, tok: _DateTok, part: str) -> date:
    """This year's date unless it passed more than a day ago; 29 February waits for a leap year."""
    for year in range(today.year, today.year + 9):
        try:
            candidate = date(year, spec.month, spec.day)
        except ValueError:
            continue
        if candidate >= today - timedelta(days=1):
            return candidate
    raise NoticeParseError(f"I could not read the {part} {_quote(text, tok)}: there is no such date.", part)


def _resolve(
    start_spec: _DateSpec,
    start_tok: _DateTok,
    end_spec: _DateSpec | None,
    end_tok: _DateTok | None,
    today: date,
    text: str,
) -> tuple[date, date | None]:
    if start_spec.year is not None:
        start = _concrete(start_spec, start_spec.year, text, start_tok, "start date")
    elif end_spec is not None and end_spec.year is not None and end_tok is not None:
        end_year = end_spec.year
        start = _concrete(start_spec, end_year, text, start_tok, "start date")
        if (start.month, start.day) > (end_spec.month, end_spec.day):
            start = _concrete(start_spec, end_year - 1, text, start_tok, "start date")
    else:
        start = _next_occurrence(start_spec, today, text, start_tok, "start date")
    if end_spec is None or end_tok is None:
        return start, None
    if end_spec.year is not None:
        return start, _concrete(end_spec, end_spec.year, text, end_tok, "end date")
    end = _concrete(end_spec, start.year, text, end_tok, "end date")
    if end < start:
        end = _concrete(end_spec, start.year + 1, text, end_tok, "end date")
    return start, end


def _weekday_warning(spec: _DateSpec, resolved: date) -> str | None:
    if spec.weekday is None or spec.fixed is not None or resolved.weekday() == spec.weekday:
        return None
    return (
        f"The notice says {_WEEKDAY_NAMES[spec.weekday]}, but {_date_words(resolved)} "
        f"is a {_WEEKDAY_NAMES[resolved.weekday()]}."
    )


def _at(day: date, tok: _TimeTok) -> datetime:
    local = datetime.combine(day, time(tok.hour, tok.minute), tzinfo=EAT)
    return local + timedelta(days=1) if tok.next_day else local


def _finish(start: datetime, end: datetime, warnings: list[str], now: datetime) -> MaintenanceNotice:
    if end == start:
        raise NoticeParseError(
            f"The window starts and ends at the same time ({_when_words(start)}).", "window"
        )
    if end < start:
        raise NoticeParseError(
            f"The window ends ({_when_words(end)}) before it starts ({_when_words(start)}).", "window"
        )
    if end - start > MAX_WINDOW:
        raise NoticeParseError(
            f"The window from {_when_words(start)} to {_when_words(end)} is longer than 7 days; "
            "please check the dates.",
            "window",
        )
    starts_at, ends_at = start.astimezone(UTC), end.astimezone(UTC)
    if ends_at <= now:
        warnings.append(f"This window has already ended ({_when_words(end)}).")
    return MaintenanceNotice(starts_at=starts_at, ends_at=ends_at, warnings=tuple(dict.fromkeys(warnings)))


def _aware_utc(now: datetime) -> datetime:
    return now.replace(tzinfo=UTC) if now.tzinfo is None or now.utcoffset() is None else now.astimezone(UTC)


# --------------------------------------------------------------------------------------------------
# Public API


def parse_notice(text: str, *, now: datetime) -> MaintenanceNotice:
    """Read a KRA notice as published ("…from Saturday, May 17, 2025, at 10 pm to Sunday…").

    ``now`` decides the year when the notice gives none (a naive ``now`` is taken as UTC).
    Raises :class:`NoticeParseError`, and nothing else, when the notice cannot be read.
    """
    try:
        return _parse_notice(text, now=now)
    except NoticeParseError:
        raise
    except Exception as exc:  # noqa: BLE001 - a last guard: staff get a sentence, never a traceback
        raise NoticeParseError("I could not read the notice.", "notice") from exc


def _parse_notice(text: str, *, now: datetime) -> MaintenanceNotice:
    if not text or not text.strip():
        raise NoticeParseError("The notice is empty.", "notice")
    if len(text) > MAX_NOTICE_CHARS:
        raise NoticeParseError(
            f"The notice is too long ({len(text)} characters); paste only the notice itself.", "notice"
        )
    now = _aware_utc(now)
    today = now.astimezone(EAT).date()
    norm = text.translate(_NORMALISE)
    dates = _find_dates(norm, today)
    times, foreign = _find_times(norm, dates)
    masked = _masked(norm, dates, times)
    frame = _choose_times(text, masked, times, dates)
    t1, t2 = frame.first, frame.second
    if not t1.valid:
        raise NoticeParseError(f"I could not read the start time {_quote(text, t1)}.", "start time")
    if not t2.valid:
        raise NoticeParseError(f"I could not read the end time {_quote(text, t2)}.", "end time")

    warnings: list[str] = []
    if foreign:
        quoted = ", ".join(_quote(text, t) for t in foreign)
        warnings.append(
            f"I ignored the times given in GMT/UTC ({quoted}) and read the East Africa Time ones."
        )
    if not frame.labelled and len(times) > 2:
        warnings.append(
            f"The notice mentions other times as well; I read {_quote(text, t1)} as the start and "
            f"{_quote(text, t2)} as the end."
        )

    start_tok, end_tok, shared = _choose_dates(text, masked, frame, dates, times)
    start_spec = start_tok.first
    if end_tok is not None:
        end_spec: _DateSpec | None = end_tok.second or end_tok.first
        end_spec_tok: _DateTok | None = end_tok
    elif start_tok.second is not None:
        end_spec, end_spec_tok = start_tok.second, start_tok
    else:
        end_spec, end_spec_tok = None, None
    start_day, end_day = _resolve(start_spec, start_tok, end_spec, end_spec_tok, today, text)

    for spec, day in ((start_spec, start_day), (end_spec, end_day)):
        if spec is not None and day is not None:
            warning = _weekday_warning(spec, day)
            if warning:
                warnings.append(warning)

    start = _at(start_day, t1)
    if end_day is None:
        end = _at(start_day, t2)
        if end < start:
            end += timedelta(days=1)
            if shared:
                warnings.append(
                    f"The notice gives one date ({_date_words(start_day)}) for a window across midnight; "
                    "I took it as the day the window starts."
                )
        elif end == start and t1.value == t2.value:
            raise NoticeParseError(
                f"The start and end times are the same ({_quote(text, t1)}); I cannot tell how long "
                "the window is.",
                "window",
            )
    else:
        end = _at(end_day, t2)
        if end_day == start_day and end < start:
            end += timedelta(days=1)
            warnings.append(
                f"The notice ends the window at {_quote(text, t2)} on {_date_words(end_day)}, before it "
                f"starts; I took the end as {_when_words(end)}."
            )
    return _finish(start, end, warnings, now)


_SPEC_DATE = re.compile(r"([0-9]{4})-([0-9]{1,2})-([0-9]{1,2})(?![0-9])")
_SPEC_GAP = re.compile(r"(?:\s*,\s*|\s+|T)", _FLAGS)
_SPEC_TIME = re.compile(r"([0-9]{1,2})[:.]([0-9]{2})(?![0-9])")
_SPEC_SEP = re.compile(r"\s*(?:->|-|to|until|till)\s*", _FLAGS)
_SPEC_TAIL = re.compile(r"\s*\(?\s*eat\s*\)?\s*$", _FLAGS)
_SPEC_EXAMPLE = '"2027-03-14 04:00-10:00" or "2027-03-14 22:00-2027-03-15 06:00"'


def parse_window_spec(text: str, *, now: datetime) -> MaintenanceNotice:
    """Read the short form staff type: "2027-03-14 04:00-10:00", "2027-03-14 22:00-2027-03-15 06:00",
    "2027-03-14 22:00 to 06:00" (an end not after the start is the next day). Times are EAT; a trailing
    "EAT" is allowed. Raises :class:`NoticeParseError`, and nothing else."""
    try:
        return _parse_window_spec(text, now=now)
    except NoticeParseError:
        raise
    except Exception as exc:  # noqa: BLE001 - a last guard, as in parse_notice
        raise NoticeParseError("I could not read the window.", "window") from exc


def _spec_date(m: re.Match[str], part: str) -> date:
    year, month, day = (int(g) for g in m.groups())
    if not 2000 <= year <= 2099:
        raise NoticeParseError(f'I could not read the {part} "{m.group(0)}": the year looks wrong.', part)
    try:
        return date(year, month, day)
    except ValueError:
        raise NoticeParseError(
            f'I could not read the {part} "{m.group(0)}": there is no such date.', part
        ) from None


def _spec_time(m: re.Match[str], part: str) -> _TimeTok:
    tok = _make_time(m.start(), m.end(), int(m.group(1)), int(m.group(2)), None)
    if not tok.valid:
        raise NoticeParseError(f'I could not read the {part} "{m.group(0)}".', part)
    return tok


def _parse_window_spec(text: str, *, now: datetime) -> MaintenanceNotice:
    s = _SPEC_TAIL.sub("", (text or "").translate(_NORMALISE).strip())
    if not s:
        raise NoticeParseError(f"The window is empty; write it as {_SPEC_EXAMPLE}.", "window")
    m = _SPEC_DATE.match(s)
    if m is None:
        raise NoticeParseError(
            f"I could not read the start date; write the window as {_SPEC_EXAMPLE}.", "start date"
        )
    start_day = _spec_date(m, "start date")
    pos = m.end()
    gap = _SPEC_GAP.match(s, pos)
    t = _SPEC_TIME.match(s, gap.end()) if gap else None
    if t is None:
        raise NoticeParseError(
            f"I could not read the start time; write the window as {_SPEC_EXAMPLE}.", "start time"
        )
    t1 = _spec_time(t, "start time")
    pos = t.end()
    sep = _SPEC_SEP.match(s, pos)
    if sep is None or sep.end() == len(s):
        raise NoticeParseError(
            f"I could not find the end time; write the window as {_SPEC_EXAMPLE}.", "end time"
        )
    pos = sep.end()
    end_day: date | None = None
    d2 = _SPEC_DATE.match(s, pos)
    if d2 is not None:
        end_day = _spec_date(d2, "end date")
        gap = _SPEC_GAP.match(s, d2.end())
        pos = gap.end() if gap else d2.end()
    t = _SPEC_TIME.match(s, pos)
    if t is None:
        raise NoticeParseError(
            f"I could not read the end time; write the window as {_SPEC_EXAMPLE}.", "end time"
        )
    t2 = _spec_time(t, "end time")
    if t.end() != len(s):
        raise NoticeParseError(
            f'I could not read "{s[t.end() :].strip()}" after the end time; '
            f"write the window as {_SPEC_EXAMPLE}.",
            "window",
        )
    start = _at(start_day, t1)
    if end_day is None:
        end = _at(start_day, t2)
        if end < start:
            end += timedelta(days=1)
    else:
        end = _at(end_day, t2)
    return _finish(start, end, [], _aware_utc(now))
