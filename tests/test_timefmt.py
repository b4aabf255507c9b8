"""Rendering times for people: EAT and UK time, English and Kiswahili, relative times."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import time_machine
from hypothesis import given
from hypothesis import strategies as st

from handlers.timefmt import (
    EAT,
    LONDON,
    format_relative,
    format_when,
    format_window,
    timezone_for_address,
    to_local,
)


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


# --- to_local -----------------------------------------------------------------------------------


def test_to_local_keeps_the_instant() -> None:
    moment = utc(2027, 3, 14, 1, 0)
    local = to_local(moment, EAT)
    assert local == moment
    assert (local.hour, local.tzinfo) == (4, EAT)


def test_naive_is_utc() -> None:
    naive = datetime(2027, 3, 14, 1, 0)  # noqa: DTZ001 - naive on purpose: SQLite gives these back
    assert to_local(naive, EAT) == utc(2027, 3, 14, 1, 0)
    assert format_when(naive, "en", EAT) == format_when(utc(2027, 3, 14, 1, 0), "en", EAT)
    assert format_relative(naive, utc(2027, 3, 14, 3, 0), "en") == "2 hours ago"
    assert format_window(naive, naive + timedelta(hours=6), "en", EAT) == "Sun 14 Mar, 04:00 to 10:00 EAT"


def test_other_offsets_are_converted() -> None:
    plus_five = datetime(2027, 3, 14, 6, 0, tzinfo=ZoneInfo("Asia/Karachi"))
    assert format_when(plus_five, "en", EAT) == "Sun 14 Mar, 04:00 EAT"


# --- format_when ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("moment", "lang", "tz", "expected"),
    [
        pytest.param(utc(2026, 11, 22, 7, 15), "en", EAT, "Sun 22 Nov, 10:15 EAT", id="en-eat"),
        pytest.param(utc(2026, 11, 22, 7, 15), "en", LONDON, "Sun 22 Nov, 07:15 UK time", id="en-london-gmt"),
        pytest.param(utc(2026, 7, 22, 7, 15), "en", LONDON, "Wed 22 Jul, 08:15 UK time", id="en-london-bst"),
        pytest.param(utc(2026, 7, 22, 7, 15), "en", EAT, "Wed 22 Jul, 10:15 EAT", id="en-eat-no-dst"),
        pytest.param(utc(2026, 11, 22, 7, 15), "sw", EAT, "Jumapili 22 Novemba, 10:15 EAT", id="sw-eat"),
        pytest.param(
            utc(2026, 11, 22, 7, 15),
            "sw",
            LONDON,
            "Jumapili 22 Novemba, 07:15 saa za Uingereza",
            id="sw-london",
        ),
        pytest.param(
            utc(2027, 3, 14, 1, 0), "sw", EAT, "Jumapili 14 Machi, 04:00 EAT", id="sw-design-example"
        ),
        pytest.param(utc(2026, 5, 18, 3, 0), "sw", EAT, "Jumatatu 18 Mei, 06:00 EAT", id="sw-may"),
        # The clocks change at 01:00 UTC: the last GMT minute and the first BST one, spring and autumn.
        pytest.param(utc(2026, 3, 29, 0, 59), "en", LONDON, "Sun 29 Mar, 00:59 UK time", id="spring-before"),
        pytest.param(utc(2026, 3, 29, 1, 0), "en", LONDON, "Sun 29 Mar, 02:00 UK time", id="spring-after"),
        pytest.param(utc(2026, 10, 25, 0, 59), "en", LONDON, "Sun 25 Oct, 01:59 UK time", id="autumn-before"),
        pytest.param(utc(2026, 10, 25, 1, 0), "en", LONDON, "Sun 25 Oct, 01:00 UK time", id="autumn-after"),
        pytest.param(utc(2026, 11, 22, 7, 15), "sw_KE", EAT, "Jumapili 22 Novemba, 10:15 EAT", id="sw-ke"),
        pytest.param(utc(2026, 11, 22, 7, 15), "en-GB", EAT, "Sun 22 Nov, 10:15 EAT", id="en-gb"),
        pytest.param(utc(2026, 11, 22, 7, 15), "fr", EAT, "Sun 22 Nov, 10:15 EAT", id="unknown-is-english"),
    ],
)
def test_format_when(moment: datetime, lang: str, tz: ZoneInfo, expected: str) -> None:
    assert format_when(moment, lang, tz) == expected


def test_other_zones_get_babel_abbreviation() -> None:
    assert format_when(utc(2026, 11, 22, 7, 15), "en", ZoneInfo("Europe/Paris")) == "Sun 22 Nov, 08:15 CET"


@pytest.mark.parametrize(
    ("moment", "now", "lang", "tz", "expected"),
    [
        pytest.param(
            utc(2026, 11, 22, 7, 15), utc(2026, 1, 1, 9), "en", EAT, "Sun 22 Nov, 10:15 EAT", id="same-year"
        ),
        pytest.param(
            utc(2027, 3, 14, 1, 0),
            utc(2026, 11, 1, 9),
            "en",
            EAT,
            "Sun 14 Mar 2027, 04:00 EAT",
            id="next-year",
        ),
        pytest.param(
            utc(2027, 3, 14, 1, 0),
            utc(2026, 11, 1, 9),
            "sw",
            EAT,
            "Jumapili 14 Machi 2027, 04:00 EAT",
            id="sw",
        ),
        pytest.param(
            utc(2025, 12, 1, 9, 0),
            utc(2026, 1, 5, 9),
            "en",
            LONDON,
            "Mon 1 Dec 2025, 09:00 UK time",
            id="past",
        ),
        # 22:00 UTC on 31 December is already the new year in Nairobi but not yet in London.
        pytest.param(
            utc(2026, 12, 31, 22, 0),
            utc(2026, 12, 31, 12),
            "en",
            EAT,
            "Fri 1 Jan 2027, 01:00 EAT",
            id="nye-eat",
        ),
        pytest.param(
            utc(2026, 12, 31, 22, 0),
            utc(2026, 12, 31, 12),
            "en",
            LONDON,
            "Thu 31 Dec, 22:00 UK time",
            id="nye-uk",
        ),
        pytest.param(
            utc(2027, 1, 1, 9, 0),
            utc(2026, 12, 31, 22, 0),
            "en",
            EAT,
            "Fri 1 Jan, 12:00 EAT",
            id="now-in-tz-year",
        ),
    ],
)
def test_year_only_when_not_nows(
    moment: datetime, now: datetime, lang: str, tz: ZoneInfo, expected: str
) -> None:
    assert format_when(moment, lang, tz, now=now) == expected


def test_without_now_no_year_and_no_clock_read() -> None:
    with time_machine.travel(utc(2040, 6, 1), tick=False):
        assert format_when(utc(2027, 3, 14, 1, 0), "en", EAT) == "Sun 14 Mar, 04:00 EAT"
        assert format_relative(utc(2027, 3, 14, 1, 0), utc(2027, 3, 14, 1, 5), "en") == "5 minutes ago"


# --- format_window -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("start", "end", "lang", "tz", "expected"),
    [
        pytest.param(
            utc(2025, 7, 13, 1), utc(2025, 7, 13, 7), "en", EAT,
            "Sun 13 Jul, 04:00 to 10:00 EAT", id="same-day",
        ),
        pytest.param(
            utc(2025, 5, 17, 19), utc(2025, 5, 18, 3), "en", EAT,
            "Sat 17 May, 22:00 to Sun 18 May, 06:00 EAT", id="across-midnight",
        ),
        pytest.param(
            utc(2025, 7, 13, 1), utc(2025, 7, 13, 7), "sw", EAT,
            "Jumapili 13 Julai, 04:00 hadi 10:00 EAT", id="sw-same-day",
        ),
        pytest.param(
            utc(2025, 5, 17, 19), utc(2025, 5, 18, 3), "sw", EAT,
            "Jumamosi 17 Mei, 22:00 hadi Jumapili 18 Mei, 06:00 EAT", id="sw-across-midnight",
        ),
        pytest.param(
            utc(2025, 5, 17, 19), utc(2025, 5, 18, 3), "en", LONDON,
            "Sat 17 May, 20:00 to Sun 18 May, 04:00 UK time", id="uk-bst",
        ),
        pytest.param(
            utc(2025, 12, 6, 19), utc(2025, 12, 7, 3), "en", LONDON,
            "Sat 6 Dec, 19:00 to Sun 7 Dec, 03:00 UK time", id="uk-gmt",
        ),
        # One day in Nairobi (01:00 to 05:00) is two days in London (23:00 to 03:00 BST).
        pytest.param(
            utc(2025, 5, 17, 22), utc(2025, 5, 18, 2), "en", EAT,
            "Sun 18 May, 01:00 to 05:00 EAT", id="one-day-in-eat",
        ),
        pytest.param(
            utc(2025, 5, 17, 22), utc(2025, 5, 18, 2), "en", LONDON,
            "Sat 17 May, 23:00 to Sun 18 May, 03:00 UK time", id="two-days-in-uk",
        ),
        pytest.param(
            utc(2025, 5, 17, 22), utc(2025, 5, 18, 2), "sw", LONDON,
            "Jumamosi 17 Mei, 23:00 hadi Jumapili 18 Mei, 03:00 saa za Uingereza", id="sw-uk",
        ),
    ],
)  # fmt: skip
def test_format_window(start: datetime, end: datetime, lang: str, tz: ZoneInfo, expected: str) -> None:
    assert format_window(start, end, lang, tz) == expected


def test_format_window_years_per_side() -> None:
    start, end = utc(2026, 12, 31, 19), utc(2027, 1, 1, 3)
    assert format_window(start, end, "en", EAT, now=utc(2026, 12, 1)) == (
        "Thu 31 Dec, 22:00 to Fri 1 Jan 2027, 06:00 EAT"
    )
    assert format_window(start, end, "en", EAT, now=utc(2025, 12, 1)) == (
        "Thu 31 Dec 2026, 22:00 to Fri 1 Jan 2027, 06:00 EAT"
    )
    assert format_window(utc(2027, 3, 14, 1), utc(2027, 3, 14, 7), "en", EAT, now=utc(2026, 1, 1)) == (
        "Sun 14 Mar 2027, 04:00 to 10:00 EAT"
    )


# --- format_relative ------------------------------------------------------------------------------

NOW = utc(2026, 5, 18, 12, 0)


@pytest.mark.parametrize(
    ("delta", "en", "sw"),
    [
        (timedelta(0), "just now", "sasa hivi"),
        (timedelta(seconds=59), "just now", "sasa hivi"),
        (timedelta(seconds=60), "1 minute ago", "dakika 1 iliyopita"),
        (timedelta(minutes=5, seconds=59), "5 minutes ago", "dakika 5 zilizopita"),
        (timedelta(minutes=59), "59 minutes ago", "dakika 59 zilizopita"),
        (timedelta(hours=1), "1 hour ago", "saa 1 iliyopita"),
        (timedelta(hours=2, minutes=30), "2 hours ago", "saa 2 zilizopita"),
        (timedelta(hours=23, minutes=59), "23 hours ago", "saa 23 zilizopita"),
        (timedelta(hours=24), "yesterday", "jana"),
        (timedelta(hours=47), "yesterday", "jana"),
        (timedelta(hours=48), "2 days ago", "siku 2 zilizopita"),
        (timedelta(days=3, hours=5), "3 days ago", "siku 3 zilizopita"),
        (timedelta(days=40), "40 days ago", "siku 40 zilizopita"),
        (-timedelta(seconds=30), "just now", "sasa hivi"),
        (-timedelta(minutes=1), "in 1 minute", "baada ya dakika 1"),
        (-timedelta(minutes=5), "in 5 minutes", "baada ya dakika 5"),
        (-timedelta(hours=2), "in 2 hours", "baada ya saa 2"),
        (-timedelta(hours=30), "tomorrow", "kesho"),
        (-timedelta(days=3), "in 3 days", "baada ya siku 3"),
    ],
)
def test_format_relative(delta: timedelta, en: str, sw: str) -> None:
    then = NOW - delta
    assert format_relative(then, NOW, "en") == en
    assert format_relative(then, NOW, "sw") == sw


def test_format_relative_mixes_zones() -> None:
    then_in_nairobi = datetime(2026, 5, 18, 13, 0, tzinfo=EAT)  # 10:00 UTC
    assert format_relative(then_in_nairobi, NOW, "en") == "2 hours ago"


# --- timezone_for_address -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("address", "tz"),
    [
        ("whatsapp:+447700900123", LONDON),
        (" WhatsApp:+447700900123 ", LONDON),
        ("whatsapp:+254712345678", EAT),
        ("whatsapp:+4412", LONDON),
        ("whatsapp:+14155550100", EAT),
        ("telegram:123456789", EAT),
        ("telegram:+447700900123", EAT),
        ("console:amina", EAT),
        ("", EAT),
    ],
)
def test_timezone_for_address(address: str, tz: ZoneInfo) -> None:
    assert timezone_for_address(address) is tz


# --- properties ------------------------------------------------------------------------------------

_moments = st.datetimes(
    min_value=datetime(2000, 1, 1),  # noqa: DTZ001 - Hypothesis bounds are naive by its API
    max_value=datetime(2099, 12, 31),  # noqa: DTZ001
    timezones=st.sampled_from([UTC, EAT, LONDON]),
)


@given(moment=_moments, lang=st.sampled_from(["en", "sw"]), tz=st.sampled_from([EAT, LONDON]))
def test_format_when_always_ends_with_the_zone(moment: datetime, lang: str, tz: ZoneInfo) -> None:
    text = format_when(moment, lang, tz, now=moment)
    label = "EAT" if tz is EAT else ("UK time" if lang == "en" else "saa za Uingereza")
    assert text.endswith(f", {to_local(moment, tz):%H:%M} {label}")


@given(then=_moments, now=_moments, lang=st.sampled_from(["en", "sw"]))
def test_format_relative_is_total(then: datetime, now: datetime, lang: str) -> None:
    assert format_relative(then, now, lang)
