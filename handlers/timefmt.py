"""Times for people: East Africa Time for Kenya, UK time for UK numbers, in English or Kiswahili.

Pure: every function takes the times it needs (``now`` included) and never reads the clock. Storage keeps
UTC; SQLite hands it back naive, so a naive datetime here is taken as UTC. Formatting goes through Babel
(``en_GB`` and ``sw``) with explicit patterns, never ``strftime``, so it does not depend on the process
locale.
"""

from __future__ import annotations

from datetime import UTC, datetime
from functools import lru_cache
from zoneinfo import ZoneInfo

from babel.dates import format_datetime

__all__ = [
    "EAT",
    "LONDON",
    "format_relative",
    "format_when",
    "format_window",
    "timezone_for_address",
    "to_local",
]

EAT = ZoneInfo("Africa/Nairobi")
LONDON = ZoneInfo("Europe/London")

_LOCALES = {"en": "en_GB", "sw": "sw"}
# The day and time, with and without the year. Kiswahili Babel has no short day names ("Jumapili"
# either way), so it gets full day and month names: "Jumapili 22 Novemba, 10:15".
_DAY = {"en": "EEE d MMM", "sw": "EEEE d MMMM"}
_DAY_WITH_YEAR = {"en": "EEE d MMM y", "sw": "EEEE d MMMM y"}
_TZ_LABELS = {
    "en": {"Africa/Nairobi": "EAT", "Europe/London": "UK time"},
    "sw": {"Africa/Nairobi": "EAT", "Europe/London": "saa za Uingereza"},
}
_UNTIL = {"en": "to", "sw": "hadi"}


def _lang(lang: str) -> str:
    """ "sw", "sw_KE", "sw-KE" read as Kiswahili; anything else as English."""
    return "sw" if lang.strip().lower()[:2] == "sw" else "en"


def _aware(dt: datetime) -> datetime:
    return dt.replace(tzinfo=UTC) if dt.tzinfo is None or dt.utcoffset() is None else dt


def to_local(dt: datetime, tz: ZoneInfo) -> datetime:
    """``dt`` in ``tz``; a naive ``dt`` is UTC (as SQLite returns it)."""
    return _aware(dt).astimezone(tz)


def _tz_label(local: datetime, lang: str, tz: ZoneInfo) -> str:
    label = _TZ_LABELS[lang].get(tz.key)
    return label if label is not None else format_datetime(local, "z", tzinfo=tz, locale=_LOCALES[lang])


def _day_and_time(local: datetime, lang: str, tz: ZoneInfo, now: datetime | None) -> str:
    """ "Sun 22 Nov, 10:15"; the year joins the day when it is not ``now``'s year (in ``tz``)."""
    with_year = now is not None and to_local(now, tz).year != local.year
    return _formatted_day_and_time(local, lang, tz, with_year)


@lru_cache(maxsize=4096)
def _formatted_day_and_time(local: datetime, lang: str, tz: ZoneInfo, with_year: bool) -> str:
    """Babel's formatting, kept: every status reply shows a few times, and the same shipments'
    times come up again and again. ``tz`` is part of the key, as aware datetimes compare by
    instant."""
    pattern = (_DAY_WITH_YEAR if with_year else _DAY)[lang] + ", HH:mm"
    return format_datetime(local, pattern, tzinfo=tz, locale=_LOCALES[lang])


def format_when(dt: datetime, lang: str, tz: ZoneInfo, *, now: datetime | None = None) -> str:
    """ "Sun 22 Nov, 10:15 EAT", "Sun 22 Nov, 07:15 UK time", "Jumapili 22 Novemba, 10:15 EAT".

    With ``now``, the year is shown when it differs from now's; without it, never.
    """
    lang = _lang(lang)
    local = to_local(dt, tz)
    return f"{_day_and_time(local, lang, tz, now)} {_tz_label(local, lang, tz)}"


def format_window(
    starts_at: datetime, ends_at: datetime, lang: str, tz: ZoneInfo, *, now: datetime | None = None
) -> str:
    """ "Sun 13 Jul, 04:00 to 10:00 EAT" within one local day, else
    "Sat 17 May, 22:00 to Sun 18 May, 06:00 EAT"; Kiswahili says "hadi". Years as in :func:`format_when`.
    """
    lang = _lang(lang)
    start, end = to_local(starts_at, tz), to_local(ends_at, tz)
    first = _day_and_time(start, lang, tz, now)
    if start.date() == end.date():
        second = format_datetime(end, "HH:mm", tzinfo=tz, locale=_LOCALES[lang])
    else:
        second = _day_and_time(end, lang, tz, now)
    return f"{first} {_UNTIL[lang]} {second} {_tz_label(start, lang, tz)}"


def _count(n: int, en_one: str, en_many: str) -> str:
    return f"{n} {en_one if n == 1 else en_many}"


def format_relative(then: datetime, now: datetime, lang: str) -> str:
    """How long ago (or how far ahead) ``then`` is from ``now``, by elapsed time.

    en: "just now", "5 minutes ago", "2 hours ago", "yesterday" (24 to 48 hours), "3 days ago";
    ahead: "in 5 minutes", "in 2 hours", "tomorrow", "in 3 days".
    sw: "sasa hivi", "dakika 5 zilizopita", "saa 2 zilizopita", "jana", "siku 3 zilizopita";
    ahead: "baada ya dakika 5", "baada ya saa 2", "kesho", "baada ya siku 3".
    Under a minute either way is "just now" / "sasa hivi".
    """
    lang = _lang(lang)
    seconds = (_aware(now) - _aware(then)).total_seconds()
    past = seconds >= 0
    seconds = abs(seconds)
    if seconds < 60:
        return "sasa hivi" if lang == "sw" else "just now"
    if seconds < 3600:
        n, en_one, en_many, sw_noun = int(seconds // 60), "minute", "minutes", "dakika"
    elif seconds < 86400:
        n, en_one, en_many, sw_noun = int(seconds // 3600), "hour", "hours", "saa"
    elif seconds < 2 * 86400:
        if lang == "sw":
            return "jana" if past else "kesho"
        return "yesterday" if past else "tomorrow"
    else:
        n, en_one, en_many, sw_noun = int(seconds // 86400), "day", "days", "siku"
    if lang == "sw":
        # Noun class 9/10: "iliyopita" agrees with one, "zilizopita" with more than one.
        if past:
            return f"{sw_noun} {n} {'iliyopita' if n == 1 else 'zilizopita'}"
        return f"baada ya {sw_noun} {n}"
    phrase = _count(n, en_one, en_many)
    return f"{phrase} ago" if past else f"in {phrase}"


def timezone_for_address(address: str) -> ZoneInfo:
    """UK time for UK WhatsApp numbers ("whatsapp:+44…"), East Africa Time for everyone else."""
    return LONDON if address.strip().lower().startswith("whatsapp:+44") else EAT
