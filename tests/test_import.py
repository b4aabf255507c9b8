"""``cargobot import``: a CSV of shipments validated row by row, imported in transactions, idempotent,
raising the same alerts as the staff commands."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import Engine, func, select

from handlers.importer import count_rows, import_csv
from storage import repo
from storage.db import read_session
from storage.models import Hold, Outbox, Shipment, Subscription, TimelineEvent
from tests.conftest import ADMIN, Chat, Clock

SAMPLE = Path(__file__).parent / "data" / "shipments.csv"
AUTHOR = "import:shipments.csv"
HEADER = "references,stage,holds,eta,transport,port,consignee,goods,packages,customer_phone,optin,note\n"


def run(engine: Engine, clock: Clock, source: Path | io.StringIO = SAMPLE, **extra: object):  # noqa: ANN201
    return import_csv(engine, source, author=AUTHOR, now=clock.now, grace_seconds=60, **extra)  # type: ignore[arg-type]


def count(engine: Engine, model: type) -> int:
    with read_session(engine) as session:
        return int(session.execute(select(func.count()).select_from(model)).scalar_one())


def find(engine: Engine, ref: str) -> Shipment:
    with read_session(engine) as session:
        found = repo.shipments_for_reference(session=session, value=ref)
        assert len(found) == 1, found
        return found[0]


def active_holds(engine: Engine, ref: str) -> list[str]:
    with read_session(engine) as session:
        return sorted(
            h.kind for h in repo.active_holds(session=session, shipment_id=find(engine, ref).id or 0)
        )


def test_sample_file_imports_every_row(engine: Engine, clock: Clock) -> None:
    report = run(engine, clock)
    assert report.errors == []
    assert (report.rows, report.created, report.updated, report.unchanged) == (6, 6, 0, 0)
    assert count(engine, Shipment) == 6
    with read_session(engine) as session:
        assert len(repo.shipments_for_reference(session=session, value="MSKU9070323")) == 3  # groupage
    first = find(engine, "26MBAIM406533011")
    assert (first.stage, first.consignee, first.packages, first.port) == (
        "declared",
        "Wanjiku Kamau (fictional)",
        40,
        "Mombasa",
    )
    assert active_holds(engine, "26MBAIM406533011") == ["docs", "inspection"]
    air = find(engine, "17612345675")
    assert air.eta == datetime(2026, 12, 2, 11, 30, tzinfo=UTC) and air.transport == "EK 719"
    assert find(engine, "26NBOIM406533045").stage == "released"
    with read_session(engine) as session:
        events = session.execute(select(TimelineEvent)).scalars().all()
        subscribed = {c.address for s, c in repo.subscribers(session=session, shipment_id=first.id or 0)}
    assert {e.author for e in events} == {AUTHOR}
    assert subscribed == {"whatsapp:+254700000201"}  # opted in at booking; +44 row said no
    assert count(engine, Subscription) == 2  # the air waybill's customer opted in too


def test_customer_sees_the_imported_shipment(chat: Chat) -> None:
    run(chat.engine, chat.clock)
    answer = chat.text("whatsapp:+254700000201", "26MBAIM406533011")
    assert "customs declaration lodged" in answer and "Wanjiku Kamau (fictional)" in answer


def test_reimporting_the_same_file_changes_nothing(engine: Engine, clock: Clock) -> None:
    run(engine, clock)
    before = (
        count(engine, TimelineEvent),
        count(engine, Outbox),
        count(engine, Hold),
        count(engine, Subscription),
    )
    stamps = {s.id: s.updated_at for s in _all(engine)}
    clock.advance(hours=1)
    report = run(engine, clock)
    assert (report.created, report.updated, report.unchanged, report.errors) == (0, 0, 6, [])
    after = (
        count(engine, TimelineEvent),
        count(engine, Outbox),
        count(engine, Hold),
        count(engine, Subscription),
    )
    assert after == before
    assert {s.id: s.updated_at for s in _all(engine)} == stamps


def _all(engine: Engine) -> list[Shipment]:
    with read_session(engine) as session:
        return list(session.execute(select(Shipment)).scalars().all())


def test_row_errors_name_their_rows_and_valid_rows_still_import(engine: Engine, clock: Clock) -> None:
    source = io.StringIO(
        HEADER
        + "MSKU9070324 26MBAIM406533011,declared,,,,,,,,,,\n"  # row 2: wrong check digit
        + "26MBAIM406533029,teleported,,,,,,,,,,\n"  # row 3: unknown stage
        + "26MBAIM406533037,declared,gremlins,,,,,,,,,\n"  # row 4: unknown hold
        + "\n"  # a blank line is skipped, but still counts as a spreadsheet row (5)
        + "26MBAIM406533045,,,someday,,,,,,,,\n"  # row 6: unreadable date
        + "26MBAIM406533053,,,,,,,,lots,,,\n"  # row 7: packages
        + "26MBAIM406533061,,,,,,,,,,yes,\n"  # row 8: optin without a customer
        + "26MBAIM406533079,,,,,Kisumu,,,,,,\n"  # row 9: unknown port
        + "26MBAIM406533087,released,kebs,,,,,,,,,\n"  # row 10: released yet held
        + "hello,,,,,,,,,,,\n"  # row 11: no reference
        + "26MBAIM406533095,arrived,,,,,,,,,,\n"  # row 12: fine
        + "26MBAIM406533095 26MBAIM406533101,,,,,,,,,,,\n"  # row 13: fine, adds a reference
        + "26MBAIM406533109 26MBAIM406533101,,,,,,,,,,,\n"  # row 14: fine (new entry + the one above)
    )
    report = run(engine, clock, source)
    rows = {e.row: e.message for e in report.errors}
    assert sorted(rows) == [2, 3, 4, 6, 7, 8, 9, 10, 11]
    assert "MSKU9070323" in rows[2] and "check digit" in rows[2]
    assert rows[3].startswith("stage:") and "in_transit" in rows[3]
    assert rows[4].startswith("holds:") and "kebs" in rows[4]
    assert rows[6].startswith("eta:")
    assert rows[7].startswith("packages:")
    assert rows[8].startswith("optin:")
    assert rows[9].startswith("port:") and "JKIA" in rows[9]
    assert rows[10].startswith("holds:")
    assert rows[11].startswith("references:")
    assert (report.rows, report.created, report.updated) == (12, 1, 2)
    assert count(engine, Shipment) == 1
    assert "row 2:" in report.summary()


def test_a_package_count_past_the_column_or_not_in_ascii_digits_is_a_row_error(
    engine: Engine, clock: Clock
) -> None:
    source = io.StringIO(
        HEADER
        + "26MBAIM406533011,,,,,,,,3000000000,,,\n"  # row 2: past 32 bits
        + "26MBAIM406533029,,,,,,,,²,,,\n"  # row 3: a digit to str.isdigit, not a number
        + "26MBAIM406533037,,,,,,,,12,,,\n"  # row 4: fine
    )
    report = run(engine, clock, source)
    rows = {e.row: e.message for e in report.errors}
    assert sorted(rows) == [2, 3] and all(m.startswith("packages:") for m in rows.values())
    assert [s.packages for s in _all(engine)] == [12]


def test_a_row_the_store_refuses_is_skipped_alone(engine: Engine, clock: Clock) -> None:
    source = io.StringIO(
        HEADER
        + "26MBAIM406533011,,,,,,,,,,,\n"
        + "26MBAIM406533029,,,,,,,,,,,\n"
        + "26MBAIM406533011 26MBAIM406533029,,,,,,,,,,,\n"  # two entries of two shipments
        + "26MBAIM406533037,,,,,,,,,,,\n"
    )
    report = run(engine, clock, source)
    assert [(e.row, "different shipments" in e.message) for e in report.errors] == [(4, True)]
    assert report.created == 3


def test_header_problems_refuse_the_whole_file(engine: Engine, clock: Clock) -> None:
    report = run(engine, clock, io.StringIO("references,colour\nMSKU9070323,red\n"))
    assert [e.row for e in report.errors] == [1] and "unknown column colour" in report.errors[0].message
    report = run(engine, clock, io.StringIO("stage\nbooked\n"))
    assert "no references column" in report.errors[0].message
    assert count(engine, Shipment) == 0


def test_header_names_are_forgiving(engine: Engine, clock: Clock) -> None:
    report = run(engine, clock, io.StringIO("Refs,Hold,Customer Phone\nMSKU9070323,KEBS,+254700000101\n"))
    assert report.errors == [] and report.created == 1
    assert active_holds(engine, "MSKU9070323") == ["kebs"]


def test_changes_in_a_new_file_raise_the_same_alerts_as_commands(engine: Engine, clock: Clock) -> None:
    run(engine, clock)
    clock.advance(hours=2)
    source = io.StringIO(
        HEADER
        + "MSKU9070323 26MBAIM406533011,released,,,,,,,,,,\n"  # release: clears inspection and docs
        + "176-12345675,,kebs,,,,,,,,,\n"  # a hold raised
    )
    report = run(engine, clock, source)
    assert (report.updated, report.errors) == (2, [])
    assert report.alerts == 2
    due = clock.now + timedelta(seconds=60)
    with read_session(engine) as session:
        rows = session.execute(select(Outbox).order_by(Outbox.id)).scalars().all()
    assert [(r.kind, r.recipient) for r in rows] == [
        ("release", "whatsapp:+254700000201"),
        ("hold", "whatsapp:+254700000202"),
    ]
    assert all(r.due_at == due for r in rows)
    assert active_holds(engine, "26MBAIM406533011") == []
    with read_session(engine) as session:
        stage_event = (
            session.execute(
                select(TimelineEvent).where(TimelineEvent.action == "stage").order_by(TimelineEvent.id.desc())  # type: ignore[union-attr]
            )
            .scalars()
            .first()
        )
    assert stage_event is not None and "cleared holds: docs, inspection" in (stage_event.detail or "")


def test_holds_column_sets_the_active_holds(engine: Engine, clock: Clock) -> None:
    run(engine, clock)
    source = io.StringIO(HEADER + "26MBAIM406533011,,docs; KEBS verification,,,,,,,,,\n")
    run(engine, clock, source)
    assert active_holds(engine, "26MBAIM406533011") == ["docs", "kebs"]
    run(engine, clock, io.StringIO(HEADER + "26MBAIM406533011,,none,,,,,,,,,\n"))
    assert active_holds(engine, "26MBAIM406533011") == []


def test_progress_counts_every_row_and_count_rows_matches(
    engine: Engine, clock: Clock, tmp_path: Path
) -> None:
    seen: list[int] = []
    run(engine, clock, progress=seen.append)
    assert sum(seen) == count_rows(SAMPLE) == 6
    semicolons = tmp_path / "excel.csv"
    semicolons.write_text(
        "\ufeffreferences;stage;customer_phone\nCMAU1639120 26MBAIM406533117;arrived;+44 7700 900301\n",
        encoding="utf-8",
    )
    assert count_rows(semicolons) == 1
    report = run(engine, clock, semicolons)
    assert report.errors == [] and report.created == 1
    assert find(engine, "26MBAIM406533117").stage == "arrived"


def test_staff_undo_leaves_an_import_alone(chat: Chat) -> None:
    run(chat.engine, chat.clock, io.StringIO(HEADER + "26MBAIM406533011,,,,,,,,,+254700000101,yes,\n"))
    assert "Nothing to undo" in chat.text(ADMIN, "/undo")
    assert count(chat.engine, Shipment) == 1
