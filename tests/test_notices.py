"""The KRA maintenance notice parser: tables of real and likely wordings, the corpus, and a fuzz."""

from __future__ import annotations

import pickle
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from handlers import notices
from handlers.notices import EAT, MaintenanceNotice, NoticeParseError, parse_notice, parse_window_spec

NOW = datetime(2025, 5, 15, 9, 0, tzinfo=UTC)  # a Thursday, two days before the May 2025 notice
CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus" / "maintenance-notices.txt"

# The two notices in the shared corpus, copied so the suite stands on its own.
CORPUS_COPY = [
    (
        "Kenya Revenue Authority informs all stakeholders that there will be a scheduled maintenance of "
        "iCMS on Sunday, July 13 from 4:00 a.m. to 10:00 a.m. Any inconvenience caused is highly regretted.",
        "2025-07-13 04:00",
        "2025-07-13 10:00",
    ),
    (
        "Please be advised that there will be a scheduled maintenance of iCMS from Saturday, May 17, 2025, "
        "at 10 pm to Sunday, May 18, 2025, at 6 am. We regret any inconvenience caused.",
        "2025-05-17 22:00",
        "2025-05-18 06:00",
    ),
]

# The news article in shared/seeds: the date in one sentence, the times in the next.
SEED_ARTICLE = (
    "The Kenya Revenue Authority (KRA) has issued a public notice announcing a scheduled maintenance of its "
    "Integrated Customs Management System (iCMS) set to take place on Sunday, July 13. The maintenance "
    "exercise will begin at 4:00 a.m. and conclude at 10:00 a.m., lasting a total of six hours.\n"
    "During this period, the iCMS platform will be completely inaccessible, affecting all users."
)


WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
MONTHS = (
    "January", "February", "March", "April", "May", "June",
    "July", "August", "September", "October", "November", "December",
)  # fmt: skip


def eat(text: str) -> datetime:
    """ "2025-05-17 22:00" in Nairobi, as an aware UTC datetime."""
    return datetime.strptime(text, "%Y-%m-%d %H:%M").replace(tzinfo=EAT).astimezone(UTC)


def window(notice: MaintenanceNotice) -> tuple[datetime, datetime]:
    return notice.starts_at, notice.ends_at


# (notice text, start EAT, end EAT) with NOW as above: a missing year means 2025.
WORDINGS = [
    pytest.param(*CORPUS_COPY[0], id="corpus-july-one-date-two-times"),
    pytest.param(*CORPUS_COPY[1], id="corpus-may-across-midnight"),
    pytest.param(SEED_ARTICLE, "2025-07-13 04:00", "2025-07-13 10:00", id="seed-article-begin-conclude"),
    pytest.param(
        "START: Saturday 17th May 2025 10.00 PM END: Sunday 18th May 2025 06.00 AM",
        "2025-05-17 22:00", "2025-05-18 06:00", id="start-end-labels-dotted-am-pm",
    ),
    pytest.param(
        "START: 22:00hrs 17/05/2025\nEND: 06:00hrs 18/05/2025",
        "2025-05-17 22:00", "2025-05-18 06:00", id="start-end-labels-time-before-date",
    ),
    pytest.param(
        "Start time: 2200 hrs, 17th May 2025. End time: 0600 hrs, 18th May 2025.",
        "2025-05-17 22:00", "2025-05-18 06:00", id="start-time-end-time-labels-hhmm-hrs",
    ),
    pytest.param(
        "from 10 pm on Saturday 17 May to 6 am on Sunday 18 May",
        "2025-05-17 22:00", "2025-05-18 06:00", id="times-before-dates",
    ),
    pytest.param(
        "Saturday 17th to Sunday 18th May 2025 from 10.00 PM to 6.00 AM",
        "2025-05-17 22:00", "2025-05-18 06:00", id="day-range-then-times",
    ),
    pytest.param(
        "May 17-18, 2025, from 10 pm to 6 am", "2025-05-17 22:00", "2025-05-18 06:00", id="month-day-range"
    ),
    pytest.param(
        "on Sat 17 May 2025 from 2200hrs to 0600hrs", "2025-05-17 22:00", "2025-05-18 06:00", id="hhmm-hrs"
    ),
    pytest.param(
        "on 17/05/2025 from 0400hrs to 1000 hrs", "2025-05-17 04:00", "2025-05-17 10:00", id="slash-date"
    ),
    pytest.param(
        "on 17.05.2025 from 04:00 hrs to 10:00 hrs EAT",
        "2025-05-17 04:00", "2025-05-17 10:00", id="dotted-date-colon-hrs",
    ),
    pytest.param(
        "Maintenance window: 2025-05-17 22:00 - 2025-05-18 06:00",
        "2025-05-17 22:00", "2025-05-18 06:00", id="iso-dates",
    ),
    pytest.param(
        "Sunday 18 May 2025 from 6.00 AM to 12:00 PM (noon)",
        "2025-05-18 06:00", "2025-05-18 12:00", id="twelve-pm-is-noon-restated",
    ),
    pytest.param(
        "Sunday 18 May 2025 from 12 noon to 4 pm", "2025-05-18 12:00", "2025-05-18 16:00", id="twelve-noon"
    ),
    pytest.param(
        "Sunday 18 May 2025 from 12 am to 4 am", "2025-05-18 00:00", "2025-05-18 04:00", id="twelve-am"
    ),
    pytest.param(
        "Saturday 17 May 2025 from 10 pm to midnight",
        "2025-05-17 22:00", "2025-05-18 00:00", id="to-midnight-is-next-day",
    ),
    pytest.param(
        "Saturday 17 May from midnight to 6 am", "2025-05-17 00:00", "2025-05-17 06:00", id="from-midnight"
    ),
    pytest.param(
        "Saturday 17 May 2025, 22:00 to 24:00",
        "2025-05-17 22:00", "2025-05-18 00:00", id="twenty-four-hundred",
    ),
    pytest.param(
        "Sunday 18 May 2025 between 4 and 10 a.m.",
        "2025-05-18 04:00", "2025-05-18 10:00", id="between-shared-meridiem",
    ),
    pytest.param(
        "on Saturday 17 May 2025 between 10 and 6 am",
        "2025-05-17 22:00", "2025-05-18 06:00", id="shared-meridiem-flips-across-midnight",
    ),
    pytest.param(
        "Sunday, July 13th, 2025 from 4 am to 10 am",
        "2025-07-13 04:00", "2025-07-13 10:00", id="month-ordinal-comma-year",
    ),
    pytest.param(
        "Sunday the 13th of July 2025, 4 am - 10 am",
        "2025-07-13 04:00", "2025-07-13 10:00", id="the-13th-of-july",
    ),
    pytest.param(
        "Sun 13 Jul 2025 4am-10am", "2025-07-13 04:00", "2025-07-13 10:00", id="short-names-no-spaces"
    ),
    pytest.param(
        "on Sunday 1st June from 4 P.M. to 10 P.M.",
        "2025-06-01 16:00", "2025-06-01 22:00", id="first-ordinal-upper-p-m",
    ),
    pytest.param(
        "Wed 4 Jun 2025 from 4.30 pm to 11.45 pm",
        "2025-06-04 16:30", "2025-06-04 23:45", id="minutes-dotted-pm",
    ),
    pytest.param(
        "on Saturday 17 May 2025 from 22:00 EAT (19:00 GMT) to 06:00 EAT (03:00 GMT)",
        "2025-05-17 22:00", "2025-05-18 06:00", id="gmt-restatements-ignored",
    ),
    pytest.param(
        "on Saturday 17 May 2025 from 22:00 (10 pm) to 06:00 (6 am)",
        "2025-05-17 22:00", "2025-05-18 06:00", id="restated-in-parentheses",
    ),
    pytest.param(
        "Nairobi, 12 May 2025. Maintenance from 10 pm on Saturday 17 May to 6 am on Sunday 18 May.",
        "2025-05-17 22:00", "2025-05-18 06:00", id="dateline-before-notice",
    ),
    pytest.param(
        "on Saturday 17 May 2025 from 10:00 PM to Sunday 18 May 2025 at 6:00 AM",
        "2025-05-17 22:00", "2025-05-18 06:00", id="end-date-between-times",
    ),
    pytest.param(
        "from 22:00 on 31 Dec to 02:00 on 1 Jan",
        "2025-12-31 22:00", "2026-01-01 02:00", id="new-year-no-years",
    ),
    pytest.param(
        "tonight from 10 pm to 6 am tomorrow", "2025-05-15 22:00", "2025-05-16 06:00", id="tonight-tomorrow"
    ),
    pytest.param(
        "on Saturday\u00a017\u00a0May 2025 from 22:00\u201306:00",
        "2025-05-17 22:00", "2025-05-18 06:00", id="non-breaking-space-and-en-dash",
    ),
    pytest.param(
        "iCMS will be unavailable on 17th May 2025 from 04:00am until 10:00am.",
        "2025-05-17 04:00", "2025-05-17 10:00", id="until",
    ),
    pytest.param("17 May 2025 22h00 - 06h00", "2025-05-17 22:00", "2025-05-18 06:00", id="h-separator"),
    pytest.param(
        "From: KRA Communications\nTo: All stakeholders\nSubject: iCMS maintenance\n\n" + CORPUS_COPY[1][0],
        "2025-05-17 22:00", "2025-05-18 06:00", id="pasted-email-header-is-not-a-label",
    ),
    pytest.param(
        "PUBLIC NOTICE\nKENYA REVENUE AUTHORITY WISHES TO INFORM ALL STAKEHOLDERS THAT THERE WILL BE "
        "A SCHEDULED MAINTENANCE ON SATURDAY 17TH MAY 2025 FROM 10.00PM TO SUNDAY 18TH MAY 2025 AT 6.00AM.",
        "2025-05-17 22:00", "2025-05-18 06:00", id="all-capitals",
    ),
    pytest.param(
        "Date: Sunday, 13th July 2025\nTime: 4.00 a.m. - 10.00 a.m.",
        "2025-07-13 04:00", "2025-07-13 10:00", id="date-and-time-lines",
    ),
    pytest.param(
        "The system will be unavailable from Friday 16th May 2025 at 2200 hours to Saturday 17th May 2025 "
        "at 0600 hours.",
        "2025-05-16 22:00", "2025-05-17 06:00", id="hhmm-hours",
    ),
    pytest.param(
        "scheduled between 10:00 p.m. on Saturday, May 17 and 6:00 a.m. on Sunday, May 18, 2025",
        "2025-05-17 22:00", "2025-05-18 06:00", id="between-and-year-only-at-end",
    ),
    pytest.param(
        "Kindly note the iCMS will be down on Sun 13-Jul-2025 from 04:00 to 10:00 hrs.",
        "2025-07-13 04:00", "2025-07-13 10:00", id="dashed-day-month-year",
    ),
    pytest.param(
        "Downtime: 13th July 2025, 0400-1000hrs", "2025-07-13 04:00", "2025-07-13 10:00", id="hhmm-pair"
    ),
    pytest.param(
        "on Saturday 17 May 2025 from 10 p.m. until 6 a.m. the following day",
        "2025-05-17 22:00", "2025-05-18 06:00", id="the-following-day",
    ),
    pytest.param(
        "Maintenance: Sat, 17.05.2025 22.00 - Sun, 18.05.2025 06.00",
        "2025-05-17 22:00", "2025-05-18 06:00", id="dotted-dates-dotted-times",
    ),
    pytest.param(
        "The maintenance is expected to take 6 hours, from 4 am to 10 am on Sunday 13 July 2025. "
        "Contact 020 4 999 999 or callcentre@kra.go.ke.",
        "2025-07-13 04:00", "2025-07-13 10:00", id="duration-and-phone-number-ignored",
    ),
]  # fmt: skip


@pytest.mark.parametrize(("text", "start", "end"), WORDINGS)
def test_reads_wording(text: str, start: str, end: str) -> None:
    notice = parse_notice(text, now=NOW)
    assert window(notice) == (eat(start), eat(end))
    assert notice.starts_at.tzinfo is UTC and notice.ends_at.tzinfo is UTC


def test_corpus_notices_read_as_their_stated_windows() -> None:
    if not CORPUS.exists():
        pytest.skip(f"{CORPUS} is not present")
    text = "\n".join(
        line for line in CORPUS.read_text(encoding="utf-8").splitlines() if not line.startswith("#")
    )
    paragraphs = [p.strip() for p in re.split(r"\n\s*\n", text) if "=>" in p]
    assert len(paragraphs) >= 2
    for paragraph in paragraphs:
        lines = paragraph.splitlines()
        notice_text = " ".join(line for line in lines if not line.startswith("=>"))
        stated = next(line for line in lines if line.startswith("=>"))
        m = re.fullmatch(r"=>\s*(\S+ \S+) to (\S+ \S+) EAT\s*", stated)
        assert m, stated
        notice = parse_notice(notice_text, now=NOW)
        assert window(notice) == (eat(m.group(1)), eat(m.group(2))), notice_text
        assert notice.warnings == ()


def test_corpus_copy_matches_file_when_present() -> None:
    if not CORPUS.exists():
        pytest.skip(f"{CORPUS} is not present")
    text = CORPUS.read_text(encoding="utf-8")
    for notice_text, _, _ in CORPUS_COPY:
        assert notice_text in text


def test_corpus_notices_give_no_warnings() -> None:
    for text, _, _ in CORPUS_COPY:
        assert parse_notice(text, now=NOW).warnings == ()


# --- the year ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("now", "expected_year"),
    [
        pytest.param(datetime(2025, 7, 1, tzinfo=UTC), 2025, id="ahead-this-year"),
        pytest.param(datetime(2025, 7, 14, 12, tzinfo=UTC), 2025, id="yesterday-stays-this-year"),
        pytest.param(datetime(2025, 7, 15, 12, tzinfo=UTC), 2026, id="passed-two-days-ago-next-year"),
        pytest.param(datetime(2025, 12, 30, tzinfo=UTC), 2026, id="december-for-july"),
    ],
)
def test_missing_year_is_next_occurrence(now: datetime, expected_year: int) -> None:
    notice = parse_notice("maintenance on 13 July from 4 am to 10 am", now=now)
    assert notice.starts_at == eat(f"{expected_year}-07-13 04:00")


def test_missing_year_uses_nairobi_date_of_now() -> None:
    # 21:30 UTC on 14 July is already 15 July in Nairobi: 13 July passed more than a day ago there.
    notice = parse_notice("on 13 July from 4 am to 10 am", now=datetime(2025, 7, 14, 21, 30, tzinfo=UTC))
    assert notice.starts_at == eat("2026-07-13 04:00")


def test_naive_now_is_utc() -> None:
    naive = datetime(2025, 5, 15, 9, 0)  # noqa: DTZ001 - deliberately naive, as SQLite returns it
    assert parse_notice(CORPUS_COPY[0][0], now=naive) == parse_notice(CORPUS_COPY[0][0], now=NOW)


def test_29_february_without_year_waits_for_a_leap_year() -> None:
    notice = parse_notice("on 29 February from 1 am to 3 am", now=NOW)
    assert notice.starts_at == eat("2028-02-29 01:00")


def test_end_year_follows_start_year() -> None:
    notice = parse_notice("from 22:00 on Thursday 31 December 2026 to 02:00 on Friday 1 January", now=NOW)
    assert window(notice) == (eat("2026-12-31 22:00"), eat("2027-01-01 02:00"))


def test_start_year_taken_from_end_date() -> None:
    notice = parse_notice("from Wednesday 31 December at 10 pm to Thursday 1 January 2026 at 2 am", now=NOW)
    assert window(notice) == (eat("2025-12-31 22:00"), eat("2026-01-01 02:00"))
    assert notice.warnings == ()


# --- warnings ------------------------------------------------------------------------------------


def test_weekday_mismatch_warns_and_keeps_the_date() -> None:
    notice = parse_notice("maintenance on Saturday, 14 March 2027 from 4 am to 10 am", now=NOW)
    assert notice.starts_at == eat("2027-03-14 04:00")
    assert notice.warnings == ("The notice says Saturday, but 14 March 2027 is a Sunday.",)


def test_weekday_mismatch_with_missing_year_picks_next_occurrence_and_warns() -> None:
    # 13 July is a Sunday in 2025, a Monday in 2026: after July 2025 the next 13 July is 2026's.
    notice = parse_notice(CORPUS_COPY[0][0], now=datetime(2025, 8, 1, tzinfo=UTC))
    assert notice.starts_at == eat("2026-07-13 04:00")
    assert notice.warnings == ("The notice says Sunday, but 13 July 2026 is a Monday.",)


def test_weekday_of_end_date_is_checked_too() -> None:
    notice = parse_notice("from Saturday 17 May 2025 at 10 pm to Monday 18 May 2025 at 6 am", now=NOW)
    assert notice.warnings == ("The notice says Monday, but 18 May 2025 is a Sunday.",)


def test_one_date_after_both_times_across_midnight_warns() -> None:
    notice = parse_notice("between 22:00 and 06:00 on 17 May 2025", now=NOW)
    assert window(notice) == (eat("2025-05-17 22:00"), eat("2025-05-18 06:00"))
    assert len(notice.warnings) == 1 and "one date (17 May 2025)" in notice.warnings[0]


def test_other_times_in_the_notice_warn_and_first_window_is_used() -> None:
    text = (
        "on Sunday, July 13 from 4:00 a.m. to 10:00 a.m., and on Sunday, July 20 from 4:00 a.m. to 10:00 a.m."
    )
    notice = parse_notice(text, now=NOW)
    assert window(notice) == (eat("2025-07-13 04:00"), eat("2025-07-13 10:00"))
    assert notice.warnings == (
        'The notice mentions other times as well; I read "4:00 a.m." as the start '
        'and "10:00 a.m." as the end.',
    )


def test_issue_time_before_from_is_skipped() -> None:
    text = (
        "Issued 12 May 2025 at 9:00 am. Maintenance will run from 10 pm on Saturday 17 May to 6 am on Sunday."
    )
    notice = parse_notice(text, now=NOW)
    assert window(notice) == (eat("2025-05-17 22:00"), eat("2025-05-18 06:00"))
    assert any("other times" in w for w in notice.warnings)


def test_gmt_times_are_ignored_with_a_warning() -> None:
    notice = parse_notice("on Saturday 17 May 2025 from 22:00 EAT (19:00 GMT) to 06:00 EAT", now=NOW)
    assert notice.warnings == (
        'I ignored the times given in GMT/UTC ("19:00") and read the East Africa Time ones.',
    )


def test_utc_plus_three_is_east_africa_time() -> None:
    notice = parse_notice("on 17 May 2025 from 22:00 UTC+3 to 06:00 UTC+3", now=NOW)
    assert window(notice) == (eat("2025-05-17 22:00"), eat("2025-05-18 06:00"))
    assert notice.warnings == ()


def test_explicit_same_end_date_before_start_rolls_over_with_warning() -> None:
    notice = parse_notice("from 10 pm on 17 May 2025 to 6 am on 17 May 2025", now=NOW)
    assert window(notice) == (eat("2025-05-17 22:00"), eat("2025-05-18 06:00"))
    assert len(notice.warnings) == 1 and "before it starts" in notice.warnings[0]


def test_window_already_over_warns() -> None:
    notice = parse_notice(CORPUS_COPY[1][0], now=datetime(2025, 6, 1, tzinfo=UTC))
    assert notice.warnings == ("This window has already ended (Sunday 18 May 2025, 06:00 EAT).",)


def test_exactly_seven_days_is_accepted() -> None:
    notice = parse_notice("from 1 March 2027 at 10 pm to 8 March 2027 at 10 pm", now=NOW)
    assert notice.ends_at - notice.starts_at == timedelta(days=7)


# --- what cannot be read --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "part", "message"),
    [
        pytest.param("", "notice", "The notice is empty.", id="empty"),
        pytest.param("   \n ", "notice", "The notice is empty.", id="blank"),
        pytest.param(
            "Please be advised that iCMS will be down. We regret any inconvenience caused.",
            "start time",
            'I could not find a start time in the notice (for example "10 pm" or "22:00").',
            id="no-times",
        ),
        pytest.param(
            "maintenance on 14 March 2027 at 10 pm",
            "end time",
            'I found the start time "10 pm" but could not find an end time in the notice.',
            id="one-time",
        ),
        pytest.param(
            "from 10 pm on Saturday to 6 am on Sunday",
            "start date",
            "The notice names Saturday but gives no date; "
            'please include the date (for example "Saturday 17 May 2025").',
            id="weekday-without-date",
        ),
        pytest.param(
            "from 10 pm to 6 am",
            "start date",
            'I could not find a start date in the notice (for example "Sunday 13 July 2025").',
            id="no-date",
        ),
        pytest.param(
            "from 10 pm to Sunday 18 May 2025 at 6 am",
            "start date",
            'I found the end date "Sunday 18 May 2025" but no start date in the notice.',
            id="only-end-date",
        ),
        pytest.param(
            "on 31 February 2027 from 22:00 to 23:00",
            "start date",
            'I could not read the start date "31 February 2027": there is no such date.',
            id="no-such-start-date",
        ),
        pytest.param(
            "from 17 May 2025 at 10 pm to 32 May 2025 at 6 am",
            "end date",
            'I could not read the end date "32 May 2025": there is no such date.',
            id="no-such-end-day",
        ),
        pytest.param(
            "from 10 pm on 17/05/2025 to 6 am on 31/06/2025",
            "end date",
            'I could not read the end date "31/06/2025": there is no such date.',
            id="no-such-end-date",
        ),
        pytest.param(
            "on 17/05/1999 from 10 pm to 6 am",
            "start date",
            'I could not read the start date "17/05/1999": the year looks wrong.',
            id="year-out-of-range",
        ),
        pytest.param(
            "from 25:00 to 06:00 on 14 March 2027",
            "start time",
            'I could not read the start time "25:00".',
            id="hour-25",
        ),
        pytest.param(
            "on 14 March 2027 from 4 am to 13:75",
            "end time",
            'I could not read the end time "13:75".',
            id="minute-75",
        ),
        pytest.param(
            "on 14 March 2027 from 13 am to 3 pm",
            "start time",
            'I could not read the start time "13 am".',
            id="thirteen-am",
        ),
        pytest.param(
            "START: 14 March 2027 END: 15 March 2027 06:00",
            "end time",
            'I found the start time "06:00" but could not find an end time in the notice.',
            id="labels-with-one-time",
        ),
        pytest.param(
            "on 14 March 2027 from 22:00 to 22:00",
            "window",
            'The start and end times are the same ("22:00"); I cannot tell how long the window is.',
            id="same-times",
        ),
        pytest.param(
            "from 1 March 2027 10 pm to 10 March 2027 6 am",
            "window",
            "The window from Monday 1 March 2027, 22:00 EAT to Wednesday 10 March 2027, 06:00 EAT is longer "
            "than 7 days; please check the dates.",
            id="longer-than-seven-days",
        ),
        pytest.param(
            "from 18 May 2025 at 10 pm to 17 May 2025 at 6 am",
            "window",
            "The window ends (Saturday 17 May 2025, 06:00 EAT) "
            "before it starts (Sunday 18 May 2025, 22:00 EAT).",
            id="end-date-before-start-date",
        ),
    ],
)
def test_unreadable_part_is_named(text: str, part: str, message: str) -> None:
    with pytest.raises(NoticeParseError) as caught:
        parse_notice(text, now=NOW)
    assert (caught.value.part, str(caught.value)) == (part, message)


def test_too_long_notice_is_refused() -> None:
    with pytest.raises(NoticeParseError) as caught:
        parse_notice("x" * (notices.MAX_NOTICE_CHARS + 1), now=NOW)
    assert caught.value.part == "notice"


def test_error_is_a_value_error_and_pickles() -> None:
    err = NoticeParseError("I could not find a start time in the notice.", "start time")
    assert isinstance(err, ValueError)
    again = pickle.loads(pickle.dumps(err))
    assert (again.part, str(again)) == ("start time", str(err))


def test_result_is_frozen() -> None:
    notice = parse_notice(CORPUS_COPY[0][0], now=NOW)
    with pytest.raises(AttributeError):
        notice.starts_at = NOW  # type: ignore[misc]


# --- the short form ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "start", "end"),
    [
        ("2027-03-14 04:00-10:00", "2027-03-14 04:00", "2027-03-14 10:00"),
        ("2027-03-14 22:00-2027-03-15 06:00", "2027-03-14 22:00", "2027-03-15 06:00"),
        ("2027-03-14 22:00 to 06:00", "2027-03-14 22:00", "2027-03-15 06:00"),
        ("2027-03-14 22:00 - 2027-03-15 06:00 EAT", "2027-03-14 22:00", "2027-03-15 06:00"),
        ("2025-07-13 04:00 to 2025-07-13 10:00 EAT", "2025-07-13 04:00", "2025-07-13 10:00"),
        ("  2027-03-14T4:00 until 10:00  ", "2027-03-14 04:00", "2027-03-14 10:00"),
        ("2027-03-14 22:00\u201324:00", "2027-03-14 22:00", "2027-03-15 00:00"),
    ],
)
def test_window_spec(spec: str, start: str, end: str) -> None:
    notice = parse_window_spec(spec, now=NOW)
    assert window(notice) == (eat(start), eat(end))


@pytest.mark.parametrize(
    ("spec", "part"),
    [
        ("", "window"),
        ("tomorrow 04:00-10:00", "start date"),
        ("14/03/2027 04:00-10:00", "start date"),
        ("2027-02-30 04:00-10:00", "start date"),
        ("2027-03-14", "start time"),
        ("2027-03-14 4am-10am", "start time"),
        ("2027-03-14 25:00-10:00", "start time"),
        ("2027-03-14 04:00", "end time"),
        ("2027-03-14 04:00-", "end time"),
        ("2027-03-14 04:00-10:61", "end time"),
        ("2027-03-14 22:00-2027-02-30 06:00", "end date"),
        ("2027-03-14 04:00-10:00 please", "window"),
        ("2027-03-14 04:00-04:00", "window"),
        ("2027-03-14 04:00-2027-03-14 03:00", "window"),
        ("2027-03-14 04:00-2027-03-24 03:00", "window"),
    ],
)
def test_window_spec_names_unreadable_part(spec: str, part: str) -> None:
    with pytest.raises(NoticeParseError) as caught:
        parse_window_spec(spec, now=NOW)
    assert caught.value.part == part
    assert str(caught.value).endswith(".")


def test_window_spec_agrees_with_notice_parser() -> None:
    for spec in ("2027-03-14 04:00-10:00", "2027-03-14 22:00-2027-03-15 06:00", "2027-03-14 22:00 to 06:00"):
        assert parse_window_spec(spec, now=NOW) == parse_notice(spec, now=NOW)


# --- fuzz -----------------------------------------------------------------------------------------

_NOTICE_WORDS = [
    "from", "to", "between", "and", "on", "at", "START:", "END:", "Saturday", "Sun", "May", "Dec", "31",
    "29", "Feb", "2025", "2099", "9999", "12", "24:00", "25:00", "00:00", "10 pm", "13 am", "12 am", "noon",
    "midnight", "(", ")", "-", "\u2013", "/", ".", "2200hrs", "4.00hrs", "22h00", "17/05/2025", "31/12/99",
    "2025-12-31", "9999-12-31", "today", "tomorrow", "GMT", "UTC+3", "a.m.", "p.m.", "\n\n", "17th", "of",
    "until", "EAT", "13:60", "00/00/0000",
]  # fmt: skip
_notice_like = st.lists(
    st.one_of(st.sampled_from(_NOTICE_WORDS), st.text(max_size=3), st.integers(0, 2100).map(str)), max_size=12
).map(" ".join)
# Hypothesis bounds are naive by its API; the values it draws carry UTC.
_nows = st.datetimes(
    min_value=datetime(2001, 1, 1),  # noqa: DTZ001
    max_value=datetime(2098, 1, 1),  # noqa: DTZ001
    timezones=st.just(UTC),
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=st.one_of(st.text(), _notice_like), now=_nows)
def test_any_text_raises_only_notice_parse_error(text: str, now: datetime) -> None:
    for parse in (notices._parse_notice, notices._parse_window_spec):  # without the last-resort guard
        try:
            notice = parse(text, now=now)
        except NoticeParseError as exc:
            assert exc.part in {"notice", "start date", "end date", "start time", "end time", "window"}
            assert str(exc)
        else:
            assert notice.starts_at.tzinfo is UTC and notice.ends_at.tzinfo is UTC
            assert notice.starts_at < notice.ends_at <= notice.starts_at + notices.MAX_WINDOW


@settings(max_examples=100, deadline=None)
@given(text=st.text())
def test_public_parsers_raise_only_notice_parse_error(text: str) -> None:
    for parse in (parse_notice, parse_window_spec):
        try:
            parse(text, now=NOW)
        except NoticeParseError:
            pass


@settings(max_examples=100, deadline=None)
@given(
    start=st.datetimes(min_value=datetime(2024, 1, 1), max_value=datetime(2030, 12, 31)),  # noqa: DTZ001 - local wall time
    minutes=st.integers(1, 7 * 24 * 60),
)
def test_generated_windows_round_trip(start: datetime, minutes: int) -> None:
    start_local = start.replace(second=0, microsecond=0, tzinfo=EAT)
    end_local = start_local + timedelta(minutes=minutes)

    def kra(local: datetime) -> str:  # "Saturday, May 17, 2025, at 22:05", whatever the process locale
        return (
            f"{WEEKDAYS[local.weekday()]}, {MONTHS[local.month - 1]} {local.day}, {local.year}, "
            f"at {local.hour:02d}:{local.minute:02d}"
        )

    text = f"Please be advised that iCMS will be down from {kra(start_local)} to {kra(end_local)}."
    notice = parse_notice(text, now=NOW)
    assert window(notice) == (start_local.astimezone(UTC), end_local.astimezone(UTC))
    assert not any(w.startswith("The notice says") for w in notice.warnings)
