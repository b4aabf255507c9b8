"""Settings refuse values that could only fail later, quietly, naming the setting."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from bot.config import Settings


def test_admins_are_read_as_the_addresses_messages_come_from() -> None:
    written = " whatsapp:+447700900001, telegram:-1001234567890,console:boss ,"
    settings = Settings(_env_file=None, admins=written)
    assert settings.admin_addresses == ["whatsapp:+447700900001", "telegram:-1001234567890", "console:boss"]


@pytest.mark.parametrize(
    "written",
    [
        "whatsapp:+44 7700 900001",  # spaces: never the address a message comes from
        "+447700900001",  # no channel
        "Telegram:55",
        "telegram:0042",  # Telegram writes 42
        "telegram:99999999999999999999",  # past a chat id's 52 bits
        "email:ops@example.com",
    ],
)
def test_an_admin_that_is_not_an_address_is_refused_by_name(written: str) -> None:
    with pytest.raises(ValidationError, match="CARGOBOT_ADMINS"):
        Settings(_env_file=None, admins=f"console:boss,{written}")
