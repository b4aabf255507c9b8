"""The customer conversation end to end through ``handlers.router.receive``, on the demo shipments."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from bot.demo import DEMO_CUSTOMER, seed_demo
from storage import repo
from storage.db import read_session, write_session
from storage.models import InboundMessage, Outbox, Subscription
from tests.conftest import ADMIN, CUSTOMER, UK_CUSTOMER, Chat


@pytest.fixture
def demo(chat: Chat) -> Chat:
    seed_demo(chat.engine, now=chat.clock.now)
    return chat


def count(chat: Chat, model: type) -> int:
    with read_session(chat.engine) as session:
        return int(session.execute(select(func.count()).select_from(model)).scalar_one())


def test_customer_gets_plain_status_for_valid_container(demo: Chat) -> None:
    answer = demo.text(CUSTOMER, "Hello, where is TGHU 734501-7?")
    assert answer.startswith("Container TGHU7345017")
    assert "declaration lodged" in answer.lower() or "declar" in answer.lower()
    assert "What it means:" in answer and "What happens next:" in answer and "What you need to do:" in answer
    assert "On hold:" in answer  # inspection and documents
    assert "Last updated" in answer and "EAT" in answer
    assert "Reply ALERT TGHU7345017" in answer


def test_uk_number_sees_uk_time(demo: Chat) -> None:
    answer = demo.text(UK_CUSTOMER, "TGHU7345017")
    assert "UK time" in answer


def test_assessed_stage_mentions_e_slip_and_safety(demo: Chat) -> None:
    answer = demo.text(CUSTOMER, "26MBAIM406532497")
    assert "e-slip" in answer
    assert "personal" in answer  # never pay into a personal number


def test_details_only_for_linked_contact(demo: Chat) -> None:
    stranger = demo.text(CUSTOMER, "26MBAIM406532497")
    assert "Faith Achieng" not in stranger
    owner = demo.text(DEMO_CUSTOMER, "26MBAIM406532497")
    assert "Faith Achieng" in owner
    assert "e-slip was sent" in owner  # the public note


def test_shared_container_asks_for_own_reference(demo: Chat) -> None:
    answer = demo.text(CUSTOMER, "MSKU9070323")
    assert "2 customers" in answer
    assert "customs entry" in answer


def test_shared_container_answers_linked_customer_for_their_shipment(demo: Chat) -> None:
    answer = demo.text(DEMO_CUSTOMER, "MSKU9070323")
    assert "duty assessed" in answer.lower()
    assert "Faith Achieng" in answer


def test_unknown_valid_reference_says_so_with_contact(demo: Chat) -> None:
    answer = demo.text(CUSTOMER, "NYKU0086852")
    assert "no record" in answer and demo.ctx.business_contact in answer


def test_wrong_check_digit_is_pointed_out_with_suggestion(demo: Chat) -> None:
    answer = demo.text(CUSTOMER, "MSCU1234565")
    assert "check digit" in answer
    assert "MSCU1234566" in answer


def test_letter_o_typo_is_corrected(demo: Chat) -> None:
    answer = demo.text(CUSTOMER, "CSQU3O54383")
    assert answer.startswith("Container CSQU3054383")


def test_kra_pin_is_not_a_reference(demo: Chat) -> None:
    answer = demo.text(CUSTOMER, "my pin is P051365947M")
    assert "KRA PIN" in answer and "not a shipment reference" in answer


def test_no_reference_gets_short_help(demo: Chat) -> None:
    answer = demo.text(CUSTOMER, "hello")
    assert "container" in answer.lower() and "HELP" in answer


def test_help_lists_keywords_in_both_languages(demo: Chat) -> None:
    assert "ALERT" in demo.text(CUSTOMER, "HELP")
    assert "kontena" in demo.text(CUSTOMER, "MSAADA").lower()


def test_kiswahili_question_answered_in_kiswahili_and_remembered(demo: Chat) -> None:
    answer = demo.text(CUSTOMER, "Habari, kontena yangu CMAU1639120 iko wapi?")
    assert answer.startswith("Kontena CMAU1639120")
    assert "Maana yake" in answer
    assert demo.text(CUSTOMER, "CMAU1639120").startswith("Kontena")


def test_lang_switches_and_sticks(demo: Chat) -> None:
    assert "Kiswahili" in demo.text(CUSTOMER, "LANG SW")
    assert demo.text(CUSTOMER, "where is CMAU1639120").startswith("Kontena")
    demo.text(CUSTOMER, "LUGHA EN")
    assert demo.text(CUSTOMER, "CMAU1639120").startswith("Container")


def test_alert_subscribes_and_stop_start_round_trip(demo: Chat) -> None:
    assert "We will message you" in demo.text(CUSTOMER, "ALERT TGHU7345017")
    assert count(demo, Subscription) == 1
    assert "START" in demo.text(CUSTOMER, "STOP")
    with read_session(demo.engine) as session:
        contact = repo.get_contact(session=session, address=CUSTOMER)
        assert contact is not None and contact.opted_out
        assert repo.subscriptions_of(session=session, contact_id=contact.id) == []
    assert "1 alerts restored" in demo.text(CUSTOMER, "START")
    with read_session(demo.engine) as session:
        contact = repo.get_contact(session=session, address=CUSTOMER)
        assert contact is not None and not contact.opted_out
        assert len(repo.subscriptions_of(session=session, contact_id=contact.id)) == 1


def test_alert_on_shared_container_asks_for_own_reference(demo: Chat) -> None:
    assert "several customers" in demo.text(CUSTOMER, "ALERT MSKU9070323")
    assert count(demo, Subscription) == 0


def test_unsubscribe(demo: Chat) -> None:
    demo.text(CUSTOMER, "ALERT TGHU7345017")
    assert "No more alerts" in demo.text(CUSTOMER, "UNSUBSCRIBE TGHU7345017")


def test_agent_request_reaches_every_staff_member(demo: Chat) -> None:
    answer = demo.text(CUSTOMER, "I need to talk to an agent please")
    assert "office hours" in answer
    with read_session(demo.engine) as session:
        rows = session.execute(select(Outbox).where(Outbox.kind == "agent")).scalars().all()
    recipients = {r.recipient for r in rows}
    assert ADMIN in recipients and "console:staff" in recipients
    assert all(CUSTOMER in r.text for r in rows)


def test_media_message_is_acknowledged_and_handed_to_staff(demo: Chat) -> None:
    replies = demo.say(CUSTOMER, "", media=("https://media.example/1.jpg",))
    assert "only read text" in replies[0].text
    with read_session(demo.engine) as session:
        rows = session.execute(select(Outbox).where(Outbox.kind == "agent")).scalars().all()
    assert rows and "https://media.example/1.jpg" in rows[0].text


def test_icms_question_without_window(demo: Chat) -> None:
    assert "not announced" in demo.text(CUSTOMER, "is iCMS down?")


def test_maintenance_window_noted_in_status_and_icms_answer(demo: Chat) -> None:
    with write_session(demo.engine) as session:
        repo.add_window(
            session=session,
            starts_at=demo.clock.now + timedelta(hours=2),
            ends_at=demo.clock.now + timedelta(hours=8),
            source_text=None,
            author=ADMIN,
            now=demo.clock.now,
        )
    assert "maintenance" in demo.text(CUSTOMER, "TGHU7345017")
    assert "next announced maintenance" in demo.text(CUSTOMER, "ICMS")
    demo.clock.advance(hours=3)
    assert "down for scheduled maintenance until" in demo.text(CUSTOMER, "ICMS")


def test_lookup_limit_stops_enumeration(demo: Chat) -> None:
    for _ in range(demo.ctx.lookup_limit_per_hour):
        assert "Container" in demo.text(CUSTOMER, "TGHU7345017")
    assert "many references" in demo.text(CUSTOMER, "TGHU7345017")
    demo.clock.advance(hours=1, minutes=1)
    assert "Container" in demo.text(CUSTOMER, "TGHU7345017")


def test_staff_command_from_customer_is_refused(demo: Chat) -> None:
    assert "for our staff" in demo.text(CUSTOMER, "/release TGHU7345017")
    assert "declar" in demo.text(CUSTOMER, "TGHU7345017").lower()


def test_redelivered_message_answered_once(demo: Chat) -> None:
    assert demo.say(CUSTOMER, "TGHU7345017", provider_id="SM1")
    assert demo.say(CUSTOMER, "TGHU7345017", provider_id="SM1") == []
    assert count(demo, InboundMessage) == 1


def test_a_message_without_a_provider_id_is_stored_with_its_answer(demo: Chat) -> None:
    """The console's messages carry no provider id: the row is stored first, then answered."""
    [reply] = demo.say(CUSTOMER, "TGHU7345017", provider_id="")
    with read_session(demo.engine) as session:
        [row] = session.execute(select(InboundMessage)).scalars().all()
    assert row.provider_key is None and row.text == "TGHU7345017"
    assert row.answered_at == demo.clock.now and row.lookups == 1
    assert row.reply and "TGHU7345017" in row.reply and row.reply in reply.text


def test_a_message_stored_but_never_answered_is_answered_once_when_redelivered(demo: Chat) -> None:
    """The process died between storing a message and answering it: its redelivery answers it."""
    with write_session(demo.engine) as session:
        session.add(
            InboundMessage(
                provider_key="whatsapp:SMleft",
                address=CUSTOMER,
                text="TGHU7345017",
                received_at=demo.clock.now - timedelta(seconds=30),
            )
        )
    assert demo.say(CUSTOMER, "TGHU7345017", provider_id="SMleft")
    assert demo.say(CUSTOMER, "TGHU7345017", provider_id="SMleft") == []
    with read_session(demo.engine) as session:
        [row] = session.execute(select(InboundMessage)).scalars().all()
    assert row.answered_at == demo.clock.now and row.lookups == 1 and "TGHU7345017" in (row.reply or "")


@pytest.mark.parametrize(
    "text",
    ["", " ", "\x00\x01\x02", "'; DROP TABLE shipment; --", "/", "/unknown", "ALERT", "LANG", "💥" * 50],
)
def test_bad_input_gets_an_answer_and_no_exception(demo: Chat, text: str) -> None:
    assert demo.say(CUSTOMER, text)


def test_very_long_message_is_cut_and_says_so(demo: Chat) -> None:
    replies = demo.say(CUSTOMER, "TGHU7345017 " + "x" * 10_000)
    assert "very long" in replies[0].text
    assert any("TGHU7345017" in r.text for r in replies)


def test_sql_looking_text_is_stored_literally(demo: Chat) -> None:
    text = "'; DROP TABLE shipment; -- MSKU9070323"
    demo.say(CUSTOMER, text)
    with read_session(demo.engine) as session:
        stored = session.execute(select(InboundMessage.text)).scalars().all()
    assert text in stored


def test_delete_my_data_after_confirmation(demo: Chat) -> None:
    demo.text(CUSTOMER, "ALERT TGHU7345017")
    assert "YES" in demo.text(CUSTOMER, "DELETE MY DATA")
    assert "erased" in demo.text(CUSTOMER, "YES")
    with read_session(demo.engine) as session:
        assert repo.get_contact(session=session, address=CUSTOMER) is None
        texts = session.execute(select(InboundMessage.text)).scalars().all()
    assert count(demo, Subscription) == 0
    assert all("TGHU7345017" not in t for t in texts)


def test_delete_my_data_erases_the_confirming_message_too(demo: Chat) -> None:
    """Messages with a provider id (every channel's) are stored after they are answered: the YES
    that confirms the erasure must not be stored under the address it erased."""
    demo.say(CUSTOMER, "ALERT TGHU7345017", provider_id="SM" + "1" * 32)
    demo.say(CUSTOMER, "DELETE MY DATA", provider_id="SM" + "2" * 32)
    assert "erased" in demo.say(CUSTOMER, "YES", provider_id="SM" + "3" * 32)[0].text
    with read_session(demo.engine) as session:
        rows = session.execute(
            select(InboundMessage.address, InboundMessage.text, InboundMessage.reply)
        ).all()
    assert len(rows) == 3
    assert all(row.address.startswith("deleted:") and not row.text and not row.reply for row in rows)


def test_delete_my_data_blanks_the_replies_and_buttons_kept_for_sending(demo: Chat) -> None:
    """A reply with its "Alert me" button (ALERT <reference>) waits in the outbox: erased too."""
    demo.text(CUSTOMER, "TGHU7345017")
    with write_session(demo.engine) as session:
        session.add(
            Outbox(
                event_key="reply:telegram:1:0",
                recipient=CUSTOMER,
                kind="reply",
                text="Container TGHU7345017 ...",
                buttons='[{"label": "Alert me when released", "data": "ALERT TGHU7345017"}]',
                status="retry",
                due_at=demo.clock.now,
                created_at=demo.clock.now,
            )
        )
    demo.text(CUSTOMER, "DELETE MY DATA")
    demo.text(CUSTOMER, "YES")
    with read_session(demo.engine) as session:
        rows = session.execute(select(Outbox.recipient, Outbox.text, Outbox.buttons)).all()
    assert rows and all(CUSTOMER not in row.recipient for row in rows)
    assert all("TGHU7345017" not in (row.text + (row.buttons or "")) for row in rows)


def test_delete_my_data_cancelled_by_anything_else(demo: Chat) -> None:
    assert "NDIO" in demo.text(CUSTOMER, "FUTA DATA YANGU")
    demo.text(CUSTOMER, "no")
    with read_session(demo.engine) as session:
        assert repo.get_contact(session=session, address=CUSTOMER) is not None


def test_staff_mistyped_command_points_to_help(demo: Chat) -> None:
    assert "Unknown command /hepl" in demo.text(ADMIN, "/hepl")
