"""Staff commands end to end through ``handlers.router.receive``: every command's happy and error
paths, the alerts they write, /undo, and the refusal of everyone who is not staff."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select
from sqlmodel import SQLModel

from handlers.staff import COMMANDS, help_text
from storage import repo
from storage.db import read_session, write_session
from storage.models import Contact, Hold, MaintenanceWindow, Outbox, Shipment, TimelineEvent
from tests.conftest import ADMIN, AGENT, CUSTOMER, UK_CUSTOMER, Chat

CONTAINER = "MSKU9070323"
ENTRY = "26MBAIM406533011"
OTHER_ENTRY = "26MBAIM406533029"
TELEGRAM_CUSTOMER = "telegram:700000301"

# The two public KRA notices of ../shared/corpus/maintenance-notices.txt, copied so the suite
# stands on its own, with the window each states in EAT and in UK time (BST in May and July).
KRA_NOTICES = [
    (
        "Kenya Revenue Authority informs all stakeholders that there will be a scheduled maintenance of "
        "iCMS on Sunday, July 13 from 4:00 a.m. to 10:00 a.m. Any inconvenience caused is highly regretted.",
        "Sun 13 Jul, 04:00 to 10:00 EAT",
        "Sun 13 Jul, 02:00 to 08:00 UK time",
    ),
    (
        "Please be advised that there will be a scheduled maintenance of iCMS from Saturday, May 17, 2025, "
        "at 10 pm to Sunday, May 18, 2025, at 6 am. We regret any inconvenience caused.",
        "Sat 17 May, 22:00 to Sun 18 May, 06:00 EAT",
        "Sat 17 May, 20:00 to Sun 18 May, 04:00 UK time",
    ),
]


# --- helpers ---------------------------------------------------------------------------------


def counts(chat: Chat) -> dict[str, int]:
    """Rows per table, except the inbound message log (every message is stored)."""
    with read_session(chat.engine) as session:
        return {
            table.name: int(session.execute(select(func.count()).select_from(table)).scalar_one())
            for table in SQLModel.metadata.sorted_tables
            if table.name != "inboundmessage"
        }


def outbox(chat: Chat, **where: object) -> list[Outbox]:
    with read_session(chat.engine) as session:
        stmt = select(Outbox).filter_by(**where).order_by(Outbox.id)
        return list(session.execute(stmt).scalars().all())


def shipment(chat: Chat, ref: str = ENTRY) -> Shipment:
    with read_session(chat.engine) as session:
        found = repo.shipments_for_reference(session=session, value=ref)
        assert len(found) == 1
        return found[0]


def holds(chat: Chat, ref: str = ENTRY) -> list[str]:
    with read_session(chat.engine) as session:
        return [h.kind for h in repo.active_holds(session=session, shipment_id=shipment(chat, ref).id or 0)]


def timeline(chat: Chat, ref: str = ENTRY) -> list[TimelineEvent]:
    with read_session(chat.engine) as session:
        return repo.timeline(session=session, shipment_id=shipment(chat, ref).id or 0)


@pytest.fixture
def booked(chat: Chat) -> Chat:
    """One shipment in a shared container, its customer linked with consent (so subscribed)."""
    assert "Added shipment" in chat.text(ADMIN, f"/add {CONTAINER} {ENTRY} for +254700000101 optin")
    return chat


# --- the registry and who may use it ---------------------------------------------------------


def test_help_lists_exactly_the_registry(chat: Chat) -> None:
    answer = chat.text(AGENT, "/help")
    assert answer == help_text(grace_seconds=chat.ctx.alert_grace_seconds)
    listed = [line.split()[0].lstrip("/") for line in answer.splitlines() if line.startswith("/")]
    assert listed == list(COMMANDS)
    for command in COMMANDS.values():
        assert command.usage in answer and command.description in answer


# An example of each command that would change something if it were obeyed.
EXAMPLES = {
    "add": f"{CONTAINER} {OTHER_ENTRY} for +254700000199 optin",
    "link": f"{ENTRY} MAEU123456789",
    "eta": f"{ENTRY} 2 Dec MSC AURORA FA412R at Mombasa",
    "note": f"{ENTRY} public hello",
    "update": f"{ENTRY} arrived",
    "hold": f"{ENTRY} kebs",
    "clear": f"{ENTRY} all",
    "release": f"{ENTRY} CRM-2026-0001",
    "undo": "",
    "find": ENTRY,
    "subs": ENTRY,
    "staff": f"add {CUSTOMER} admin",
    "maintenance": "2027-03-14 04:00-10:00",
    "broadcast": "Hello everyone",
    "help": "",
}


def test_customer_sending_every_command_is_refused_and_nothing_changes(booked: Chat) -> None:
    assert set(EXAMPLES) == set(COMMANDS), "give every registered command an example"
    booked.text(ADMIN, f"/hold {ENTRY} inspection")
    booked.text(CUSTOMER, "hello")  # the contact exists before the snapshot
    before = counts(booked)
    for name in COMMANDS:
        answer = booked.text(CUSTOMER, f"/{name} {EXAMPLES[name]}".strip())
        if name == "help":
            assert "ALERT" in answer and "/release" not in answer  # the customer help, not the staff list
        else:
            assert "for our staff" in answer, name
    assert counts(booked) == before
    with read_session(booked.engine) as session:
        assert repo.staff_role(session=session, address=CUSTOMER) is None
        contact = repo.get_contact(session=session, address=CUSTOMER)
        assert contact is not None and contact.pending_action is None
    assert holds(booked) == ["inspection"]
    assert shipment(booked).stage == "booked"


@pytest.mark.parametrize("command", [name for name, c in COMMANDS.items() if c.admin_only])
def test_agent_is_refused_admin_only_commands(booked: Chat, command: str) -> None:
    booked.text(AGENT, "/help")  # the agent's contact exists before the snapshot
    before = counts(booked)
    assert "for admins only" in booked.text(AGENT, f"/{command} {EXAMPLES[command]}")
    assert counts(booked) == before
    with read_session(booked.engine) as session:
        contact = repo.get_contact(session=session, address=AGENT)
        assert contact is not None and contact.pending_action is None


def test_command_with_bot_name_suffix_works(booked: Chat) -> None:
    assert f"Shipment #{shipment(booked).id}" in booked.text(AGENT, f"/find@CargoBot {ENTRY}")


# Bad input for every command: a clear reply, never a failure, never a write.
GARBAGE = [
    "/add",
    "/add hello world",
    f"/add {CONTAINER} for",
    f"/add {CONTAINER} for Jane Doe",
    "/add " + "x" * 5000,
    "/link",
    f"/link {ENTRY}",
    f"/link {ENTRY} nonsense",
    "/eta",
    f"/eta {ENTRY}",
    f"/eta {ENTRY} someday",
    f"/eta {ENTRY} 31/02/2026",
    f"/eta {ENTRY} 2 Dec 25:00",
    f"/eta {ENTRY} 2 Dec " + "V" * 200,
    "/note",
    f"/note {ENTRY}",
    f"/note {ENTRY} public",
    "/update",
    f"/update {ENTRY}",
    f"/update {ENTRY} teleported",
    "/hold",
    f"/hold {ENTRY}",
    f"/hold {ENTRY} 💥",
    f"/clear {ENTRY} kebs",
    f"/clear {ENTRY} nothing",
    "/release",
    "/release '; DROP TABLE shipment; --",
    "/find",
    "/find '; DROP TABLE shipment; --",
    "/find P051365947M",
    "/subs",
    "/staff",
    "/staff add",
    "/staff add nonsense",
    "/staff fire console:agent",
    "/staff remove console:nobody",
    "/maintenance",
    "/maintenance cancel",
    "/maintenance cancel 999",
    "/maintenance cancel abc",
    "/maintenance cancel 99999999999999999999999",
    "/maintenance cancel 3000000000",
    "/maintenance cancel ²",
    f"/add {ENTRY} for telegram:99999999999999999999 optin",
    f"/add {ENTRY} for 99999999999999999999 optin",
    "/maintenance the system will be down at some point",
    "/maintenance 2027-03-14",
    "/maintenance 2020-03-14 04:00-10:00",
    "/broadcast",
    "/broadcast confirm",
    "/broadcast " + "x" * 2000,
]


def test_garbage_arguments_get_a_clear_reply_and_write_nothing(booked: Chat) -> None:
    before = counts(booked)
    for text in GARBAGE:
        answer = booked.text(ADMIN, text)
        assert answer and "failed" not in answer, (text, answer)
    assert counts(booked) == before


# --- /add and /link ---------------------------------------------------------------------------


def test_add_creates_shipment_the_linked_customer_can_read(booked: Chat) -> None:
    answer = booked.text(CUSTOMER, ENTRY)
    assert answer.startswith(f"Customs entry {ENTRY}")
    assert "booked in the UK" in answer
    with read_session(booked.engine) as session:
        contact = repo.get_contact(session=session, address=CUSTOMER)
        assert contact is not None
        assert len(repo.subscriptions_of(session=session, contact_id=contact.id or 0)) == 1
    event = timeline(booked)[-1]
    assert event.action == "create" and event.author == ADMIN


def test_add_shares_a_container_between_shipments(booked: Chat) -> None:
    answer = booked.text(ADMIN, f"/add {CONTAINER} {OTHER_ENTRY}")
    assert "shared with 1 other shipment" in answer
    with read_session(booked.engine) as session:
        assert len(repo.shipments_for_reference(session=session, value=CONTAINER)) == 2
    assert "customs entry" in booked.text(UK_CUSTOMER, CONTAINER)  # asks a stranger for their own reference


def test_add_refuses_an_entry_already_on_file(booked: Chat) -> None:
    before = counts(booked)
    answer = booked.text(ADMIN, f"/add {CONTAINER} {ENTRY}")
    assert "already on file" in answer and f"/find {ENTRY}" in answer
    assert counts(booked) == before


def test_add_treats_our_job_numbers_as_house_references(chat: Chat) -> None:
    jobs = Chat(
        engine=chat.engine, ctx=replace(chat.ctx, job_pattern=re.compile(r"EF-?[0-9]{5}")), clock=chat.clock
    )
    assert "Job reference EF10001" in jobs.text(ADMIN, f"/add {CONTAINER} EF-10001")
    assert "already on file" in jobs.text(ADMIN, f"/add {CONTAINER} EF10001")
    assert "shared with 1 other" in jobs.text(ADMIN, f"/add {CONTAINER} EF-10002")


def test_add_refuses_a_wrong_check_digit_with_the_suggestion(chat: Chat) -> None:
    answer = chat.text(ADMIN, "/add MSKU9070324 26MBAIM406533011")
    assert "wrong check digit" in answer and "MSKU9070323" in answer
    assert counts(chat)["shipment"] == 0


def test_add_refuses_a_kra_pin(chat: Chat) -> None:
    assert "KRA PIN" in chat.text(ADMIN, "/add A004416331M")
    assert counts(chat)["shipment"] == 0


def test_add_without_optin_links_but_does_not_subscribe(chat: Chat) -> None:
    answer = chat.text(ADMIN, f"/add {ENTRY} for 0700 000 101 collect Friday")
    assert "not subscribed" in answer and "Internal note" in answer
    with read_session(chat.engine) as session:
        contact = repo.get_contact(session=session, address=CUSTOMER)
        assert contact is not None
        assert repo.linked_shipment_ids(
            session=session, contact_id=contact.id or 0, among=[shipment(chat).id or 0]
        )
        assert repo.subscriptions_of(session=session, contact_id=contact.id or 0) == []
    assert timeline(chat)[-1].note == "collect Friday"


def test_add_for_a_telegram_id_links_the_telegram_contact(chat: Chat) -> None:
    chat.text(ADMIN, f"/add {ENTRY} for 700000301 optin")
    with read_session(chat.engine) as session:
        assert [
            c.address for c in repo.linked_contacts(session=session, shipment_id=shipment(chat).id or 0)
        ] == [TELEGRAM_CUSTOMER]


def test_link_adds_references_and_a_customer(booked: Chat) -> None:
    answer = booked.text(ADMIN, f"/link {ENTRY} MAEU123456789 for +447700900101 optin")
    assert "Bill of lading MAEU123456789" in answer and "subscribed" in answer
    assert shipment(booked, "MAEU123456789").id == shipment(booked).id
    assert "already" in booked.text(ADMIN, f"/link {ENTRY} MAEU123456789")


def test_link_refuses_an_entry_of_another_shipment(booked: Chat) -> None:
    booked.text(ADMIN, f"/add {OTHER_ENTRY}")
    assert "different shipments" in booked.text(ADMIN, f"/link {ENTRY} {OTHER_ENTRY}")


# --- arrival, notes, stages, holds, release ---------------------------------------------------


def test_eta_sets_arrival_and_the_customer_sees_it(booked: Chat) -> None:
    answer = booked.text(ADMIN, f"/eta {ENTRY} 2 Dec 14:30 MSC AURORA FA412R at Mombasa")
    assert "Wed 2 Dec, 14:30 EAT" in answer and "11:30 UK time" in answer
    current = shipment(booked)
    assert current.eta == datetime(2026, 12, 2, 11, 30, tzinfo=UTC)
    assert (current.transport, current.port) == ("MSC AURORA FA412R", "Mombasa")
    status = booked.text(CUSTOMER, ENTRY)
    assert "MSC AURORA FA412R" in status and "Mombasa" in status
    assert "Nothing changed" in booked.text(ADMIN, f"/eta {ENTRY} 2026-12-02 14:30 MSC AURORA FA412R Mombasa")


def test_eta_accepts_day_first_dates_and_airports(booked: Chat) -> None:
    booked.text(ADMIN, f"/eta {ENTRY} 02/12/2026 EK 719 JKIA")
    current = shipment(booked)
    assert current.eta is not None and current.eta.astimezone(UTC).date().isoformat() == "2026-12-02"
    assert (current.transport, current.port) == ("EK 719", "JKIA")


def test_internal_note_stays_internal_and_public_note_reaches_the_customer(booked: Chat) -> None:
    assert "staff only" in booked.text(ADMIN, f"/note {ENTRY} customer owes storage fees")
    assert "customers linked" in booked.text(ADMIN, f"/note {ENTRY} public The e-slip was emailed to you")
    status = booked.text(CUSTOMER, ENTRY)
    assert "The e-slip was emailed to you" in status and "storage fees" not in status
    assert "storage fees" in booked.text(AGENT, f"/find {ENTRY}")


def test_undone_public_note_no_longer_reaches_the_customer(booked: Chat) -> None:
    booked.text(ADMIN, f"/note {ENTRY} public Your goods are ready for collection")
    booked.text(ADMIN, "/undo")
    assert "ready for collection" not in booked.text(CUSTOMER, ENTRY)
    assert "(undone)" in booked.text(ADMIN, f"/find {ENTRY}")


def test_update_reads_friendly_stage_words(booked: Chat) -> None:
    answer = booked.text(AGENT, f"/update {ENTRY} landed at Kilindini")
    assert "booked → arrived" in answer
    assert shipment(booked).stage == "arrived"
    event = timeline(booked)[0]
    assert (event.author, event.action, event.note) == (AGENT, "stage", "at Kilindini")
    assert "already arrived" in booked.text(AGENT, f"/update {ENTRY} arrived")


def test_unknown_stage_lists_the_stages(booked: Chat) -> None:
    answer = booked.text(ADMIN, f"/update {ENTRY} teleported")
    assert "booked, in_transit, arrived, declared, assessed, paid, released, collected, delivered" in answer


def test_unknown_hold_lists_the_holds(booked: Chat) -> None:
    assert "inspection, kebs, docs, agency, amend" in booked.text(ADMIN, f"/hold {ENTRY} gremlins")


def test_unknown_reference_says_so(booked: Chat) -> None:
    assert "No shipment has" in booked.text(ADMIN, "/find 26MBAIM499999999")
    assert "not a shipment reference" in booked.text(ADMIN, "/find hello")


def test_hold_and_clear_change_holds_and_reach_the_timeline(booked: Chat) -> None:
    booked.text(ADMIN, f"/hold {ENTRY} under control scanning booked for Monday")
    booked.text(AGENT, f"/hold {ENTRY} port health")
    assert holds(booked) == ["inspection", "agency"]
    assert "already on hold" in booked.text(ADMIN, f"/hold {ENTRY} inspection")
    answer = booked.text(AGENT, f"/clear {ENTRY} inspection scan passed")
    assert "Still on hold: agency" in answer
    assert "not on hold for kebs" in booked.text(AGENT, f"/clear {ENTRY} kebs")
    assert "No holds remain" in booked.text(AGENT, f"/clear {ENTRY} all")
    assert holds(booked) == []
    authors = [(e.author, e.action) for e in timeline(booked)[:4]]
    assert authors == [(AGENT, "clear"), (AGENT, "clear"), (AGENT, "hold"), (ADMIN, "hold")]


def test_hold_on_a_shared_container_reaches_every_shipment_in_it(booked: Chat) -> None:
    booked.text(ADMIN, f"/add {CONTAINER} {OTHER_ENTRY}")
    booked.text(ADMIN, f"/hold {CONTAINER} kebs")
    assert holds(booked) == ["kebs"] and holds(booked, OTHER_ENTRY) == ["kebs"]


def test_release_clears_the_remaining_holds_and_says_which(booked: Chat) -> None:
    booked.text(ADMIN, f"/hold {ENTRY} inspection")
    booked.text(ADMIN, f"/hold {ENTRY} docs")
    answer = booked.text(ADMIN, f"/release {ENTRY} CRM-2026-0500 collect after 2pm")
    assert "Cleared the remaining holds: inspection, docs" in answer
    assert "Release message number: CRM-2026-0500" in answer
    current = shipment(booked)
    assert (current.stage, current.release_number) == ("released", "CRM-2026-0500")
    assert holds(booked) == []
    assert "released" in booked.text(CUSTOMER, ENTRY).lower()
    assert "already released" in booked.text(ADMIN, f"/release {ENTRY}")


def test_update_released_is_the_same_as_release(booked: Chat) -> None:
    booked.text(ADMIN, f"/hold {ENTRY} kebs")
    answer = booked.text(ADMIN, f"/update {ENTRY} released")
    assert "Cleared the remaining holds: kebs" in answer
    assert [r.kind for r in outbox(booked, status="pending")] == ["hold", "release"]


def test_release_of_a_shared_container_asks_for_the_entry(booked: Chat) -> None:
    booked.text(ADMIN, f"/add {CONTAINER} {OTHER_ENTRY}")
    answer = booked.text(ADMIN, f"/release {CONTAINER}")
    assert "shared by 2 shipments" in answer and ENTRY in answer and OTHER_ENTRY in answer
    assert shipment(booked).stage == "booked"


# --- alerts and /undo --------------------------------------------------------------------------


def test_alerts_are_outbox_rows_due_after_grace_one_per_subscriber(booked: Chat) -> None:
    booked.text(UK_CUSTOMER, f"ALERT {ENTRY}")
    booked.text(TELEGRAM_CUSTOMER, f"ALERT {ENTRY} ALL")
    due = booked.clock.now + timedelta(seconds=booked.ctx.alert_grace_seconds)

    assert "3 alerts will go out in 60 s" in booked.text(ADMIN, f"/hold {ENTRY} kebs")
    rows = outbox(booked, kind="hold")
    assert sorted(r.recipient for r in rows) == sorted([CUSTOMER, UK_CUSTOMER, TELEGRAM_CUSTOMER])
    assert all(r.due_at == due and r.status == "pending" for r in rows)
    assert len({(r.event_key, r.recipient) for r in rows}) == 3 and len({r.event_key for r in rows}) == 1

    booked.text(ADMIN, f"/update {ENTRY} assessed")  # a stage change reaches only ALERT … ALL
    assert [r.recipient for r in outbox(booked, kind="stage")] == [TELEGRAM_CUSTOMER]

    booked.text(ADMIN, f"/release {ENTRY}")  # release sends the release alert only, to everyone
    assert len(outbox(booked, kind="release")) == 3
    assert len(outbox(booked, kind="stage")) == 1 and outbox(booked, kind="hold_cleared") == []


def test_undo_within_grace_restores_state_and_cancels_alerts(booked: Chat) -> None:
    booked.text(ADMIN, f"/hold {ENTRY} inspection")
    booked.clock.advance(seconds=30)
    booked.text(ADMIN, f"/release {ENTRY} CRM-2026-0500")
    booked.clock.advance(seconds=30)
    answer = booked.text(ADMIN, "/undo")
    assert "1 pending alert cancelled" in answer
    current = shipment(booked)
    assert (current.stage, current.release_number) == ("booked", None)
    assert holds(booked) == ["inspection"]
    assert [r.status for r in outbox(booked, kind="release")] == ["cancelled"]
    assert [r.status for r in outbox(booked, kind="hold")] == ["pending"]  # an earlier change stays
    events = timeline(booked)
    assert events[0].action == "undo" and events[1].undone_at is not None
    assert "released" not in booked.text(CUSTOMER, ENTRY).lower()


def test_undo_after_grace_does_nothing(booked: Chat) -> None:
    booked.text(ADMIN, f"/release {ENTRY}")
    booked.clock.advance(seconds=booked.ctx.alert_grace_seconds + 1)
    before = counts(booked)
    assert "Nothing to undo" in booked.text(ADMIN, "/undo")
    assert counts(booked) == before
    assert shipment(booked).stage == "released"
    assert [r.status for r in outbox(booked, kind="release")] == ["pending"]


def test_undo_reverts_only_the_senders_own_change(booked: Chat) -> None:
    booked.text(AGENT, f"/hold {ENTRY} docs")
    booked.text(ADMIN, f"/note {ENTRY} docs requested by email")
    assert "Undone: hold" in booked.text(AGENT, "/undo")
    assert holds(booked) == []
    assert shipment(booked).updated_by == ADMIN  # the admin's later note keeps its stamp


def test_undo_refuses_to_overwrite_someone_elses_later_change(booked: Chat) -> None:
    booked.text(AGENT, f"/update {ENTRY} arrived")
    booked.text(ADMIN, f"/update {ENTRY} declared")
    assert "would overwrite their change" in booked.text(AGENT, "/undo")
    assert shipment(booked).stage == "declared"


def test_undo_of_add_removes_the_shipment_and_frees_its_references(chat: Chat) -> None:
    chat.text(ADMIN, f"/add {CONTAINER} {ENTRY} for +254700000101 optin")
    assert "Removed shipment" in chat.text(ADMIN, "/undo")
    after = counts(chat)
    assert after["shipment"] == after["reference"] == after["subscription"] == after["timelineevent"] == 0
    assert "Added shipment" in chat.text(ADMIN, f"/add {ENTRY}")


# --- /find and /subs ----------------------------------------------------------------------------


def test_find_shows_everything_including_failed_alert_reasons(booked: Chat) -> None:
    booked.text(ADMIN, f"/eta {ENTRY} 2 Dec MSC AURORA FA412R at Mombasa")
    booked.text(AGENT, f"/hold {ENTRY} kebs waiting for the certificate")
    booked.text(ADMIN, f"/note {ENTRY} consignee prefers calls after 5pm")
    with write_session(booked.engine) as session:
        row = session.execute(select(Outbox).where(Outbox.kind == "hold")).scalar_one()
        row.status, row.attempts, row.last_error = (
            "failed",
            3,
            "63016: outside the 24-hour window, no template",
        )
    answer = booked.text(AGENT, f"/find {CONTAINER}")
    for expected in (
        f"Container {CONTAINER} (Maersk)",
        f"Customs entry {ENTRY}",
        "ON HOLD: kebs",
        "MSC AURORA FA412R at Mombasa",
        f"Customers: {CUSTOMER}",
        "Subscribers: 1",
        f"{AGENT}: hold kebs",
        "internal note: consignee prefers calls after 5pm",
        f"hold to {CUSTOMER}: failed, 3 attempts — 63016: outside the 24-hour window",
    ):
        assert expected in answer, expected


def test_subs_lists_subscribers(booked: Chat) -> None:
    booked.text(TELEGRAM_CUSTOMER, f"ALERT {ENTRY} ALL")
    answer = booked.text(AGENT, f"/subs {ENTRY}")
    assert "2 subscribers" in answer
    assert f"{TELEGRAM_CUSTOMER} (via {ENTRY}, every stage)" in answer
    assert f"{CUSTOMER} (via {ENTRY}, release and holds)" in answer


# --- /staff -------------------------------------------------------------------------------------


def test_admin_manages_staff(chat: Chat) -> None:
    assert "whatsapp:+447700900555 is now staff (agent)" in chat.text(ADMIN, "/staff add +44 7700 900555")
    assert "now staff (admin)" in chat.text(ADMIN, "/staff add whatsapp:+447700900555 admin")
    listing = chat.text(ADMIN, "/staff list")
    assert "whatsapp:+447700900555: admin" in listing and f"{AGENT}: agent" in listing
    assert "Removed" in chat.text(ADMIN, f"/staff remove {AGENT}")
    assert "for our staff" in chat.text(AGENT, "/find MSKU9070323")
    assert "cannot remove yourself" in chat.text(ADMIN, f"/staff remove {ADMIN}")


# --- /maintenance ----------------------------------------------------------------------------


@pytest.mark.parametrize(("notice", "eat", "uk"), KRA_NOTICES, ids=["july", "may"])
def test_maintenance_reads_kra_notices_and_answers_in_eat_and_uk_time(
    booked: Chat, notice: str, eat: str, uk: str
) -> None:
    booked.clock.now = datetime(2025, 5, 10, 9, 0, tzinfo=UTC)
    answer = booked.text(AGENT, f"/maintenance {notice}")
    assert eat in answer and uk in answer
    assert "Reply /maintenance cancel 1 if this is wrong" in answer
    recipients = {r.recipient for r in outbox(booked, kind="maintenance_announced")}
    assert recipients == {ADMIN, AGENT, CUSTOMER}
    with read_session(booked.engine) as session:
        window = session.execute(select(MaintenanceWindow)).scalar_one()
    assert window.announced_by == AGENT and window.source_text == notice


def test_maintenance_warns_when_the_weekday_does_not_match(chat: Chat) -> None:
    chat.clock.now = datetime(2025, 5, 10, 9, 0, tzinfo=UTC)
    answer = chat.text(ADMIN, "/maintenance iCMS maintenance on Friday, May 17, 2025 from 10 pm to 11 pm.")
    assert "Check: The notice says Friday" in answer


def test_maintenance_short_form_list_and_cancel(chat: Chat) -> None:
    answer = chat.text(ADMIN, "/maintenance 2027-03-14 04:00-10:00")
    assert "Sun 14 Mar 2027, 04:00 to 10:00 EAT" in answer and "01:00 to 07:00 UK time" in answer
    assert "already as #1" in chat.text(ADMIN, "/maintenance 2027-03-14 04:00-10:00")
    assert "#1: Sun 14 Mar 2027" in chat.text(AGENT, "/maintenance list")

    with write_session(chat.engine) as session:  # the admin's notice went out; the agent's did not yet
        row = session.execute(select(Outbox).where(Outbox.recipient == ADMIN)).scalar_one()
        row.status, row.sent_at = "sent", chat.clock.now
    answer = chat.text(AGENT, "/maintenance cancel 1")
    assert "1 notice not yet sent were stopped; 1 person already told" in answer
    assert [r.status for r in outbox(chat, recipient=AGENT)] == ["cancelled"]
    assert [r.recipient for r in outbox(chat, kind="maintenance_cancelled")] == [ADMIN]
    assert "No iCMS maintenance window" in chat.text(AGENT, "/maintenance list")
    assert "cancelled already" in chat.text(AGENT, "/maintenance cancel 1")


def test_unreadable_notice_says_which_part_and_saves_nothing(chat: Chat) -> None:
    answer = chat.text(ADMIN, "/maintenance There will be maintenance of iCMS on Sunday from 4:00 a.m.")
    assert "end time could not be read" in answer
    assert counts(chat)["maintenancewindow"] == 0 and counts(chat)["outbox"] == 0


# --- /broadcast ---------------------------------------------------------------------------------


def test_broadcast_needs_a_confirmation(booked: Chat) -> None:
    booked.text(UK_CUSTOMER, "hello")
    booked.text(TELEGRAM_CUSTOMER, "hello")
    booked.text(TELEGRAM_CUSTOMER, "STOP")
    answer = booked.text(ADMIN, "/broadcast Our office is closed on Friday.")
    assert "This will go to 2 contacts" in answer and "/broadcast confirm" in answer
    assert outbox(booked, kind="broadcast") == []
    assert "queued for 2 contacts" in booked.text(ADMIN, "/broadcast confirm")
    rows = outbox(booked, kind="broadcast")
    assert sorted(r.recipient for r in rows) == sorted([CUSTOMER, UK_CUSTOMER])
    assert all(r.text.startswith("Our office is closed on Friday.") for r in rows)
    assert "No broadcast is waiting" in booked.text(ADMIN, "/broadcast confirm")


def test_broadcast_cancel_and_expiry_send_nothing(booked: Chat) -> None:
    booked.text(ADMIN, "/broadcast First draft")
    assert "cancelled" in booked.text(ADMIN, "/broadcast cancel")
    booked.text(ADMIN, "/broadcast Second draft")
    booked.clock.advance(minutes=16)
    assert "dropped" in booked.text(ADMIN, "/broadcast confirm")
    assert outbox(booked, kind="broadcast") == []
    with read_session(booked.engine) as session:
        contact = session.execute(select(Contact).where(Contact.address == ADMIN)).scalar_one()
        assert contact.pending_action is None


def test_holds_table_is_untouched_by_a_refused_container_hold(booked: Chat) -> None:
    booked.text(ADMIN, f"/release {ENTRY}")
    with read_session(booked.engine) as session:
        before = session.execute(select(func.count()).select_from(Hold)).scalar_one()
    assert "already released" in booked.text(ADMIN, f"/hold {CONTAINER} kebs")
    with read_session(booked.engine) as session:
        assert session.execute(select(func.count()).select_from(Hold)).scalar_one() == before
