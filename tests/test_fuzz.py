"""Hostile input: whatever a customer or staff member types, the bot answers and nothing escapes."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.demo import seed_demo
from handlers.staff import COMMANDS
from tests.conftest import ADMIN, CUSTOMER, Chat

FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

fragments = st.sampled_from(
    [
        "MSKU9070323",
        "TGHU 734501-7",
        "26MBAIM406532497",
        "176-12345675",
        "P051365947M",
        "ALERT",
        "ALL",
        "STOP",
        "START",
        "LANG",
        "sw",
        "AGENT",
        "for",
        "+254700000101",
        "optin",
        "public",
        "released",
        "inspection",
        "all",
        "confirm",
        "cancel",
        "2027-03-14",
        "04:00-10:00",
        "'; DROP TABLE shipment; --",
        "%s",
        "{ref}",
        "{0}",
        "\x00",
        "\u202e",
        "💥",
        "\n",
        "  ",
        "/",
        "@",
        "0712345678",
        "KES 1,000",
    ]
)
messages = st.one_of(
    st.text(max_size=300),
    st.lists(fragments, max_size=12).map(" ".join),
    st.binary(max_size=200).map(lambda b: b.decode("utf-8", errors="replace")),
)


@FUZZ
@given(text=messages)
def test_any_customer_text_gets_an_answer(chat: Chat, text: str) -> None:
    seed_demo(chat.engine, now=chat.clock.now)
    replies = chat.say(CUSTOMER, text)
    assert replies and all(isinstance(r.text, str) and r.text for r in replies)


@FUZZ
@given(command=st.sampled_from(sorted(COMMANDS)), rest=st.lists(fragments, max_size=8).map(" ".join))
def test_any_staff_command_arguments_get_an_answer(chat: Chat, command: str, rest: str) -> None:
    seed_demo(chat.engine, now=chat.clock.now)
    replies = chat.say(ADMIN, f"/{command} {rest}")
    assert replies and replies[0].text


@FUZZ
@given(command=st.sampled_from(sorted(COMMANDS)), rest=st.lists(fragments, max_size=6).map(" ".join))
def test_staff_commands_from_customers_are_always_refused(chat: Chat, command: str, rest: str) -> None:
    seed_demo(chat.engine, now=chat.clock.now)
    answer = chat.text(CUSTOMER, f"/{command} {rest}")
    customer_menu = {"help", "alert", "stop", "lang", "agent", "unsubscribe", "icms", "start", "menu"}
    if command not in customer_menu:
        assert "for our staff" in answer
