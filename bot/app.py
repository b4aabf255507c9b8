"""The composition root: builds Settings, the engine, the handlers' context and the channels.

Nothing is built at import time; every process (web, worker, chat, dispatch …) calls ``build_app``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TextIO

from sqlalchemy import Engine

from bot.config import Settings
from bot.delivery import Channel
from handlers.context import Context
from storage import repo
from storage.db import init_db, make_engine, write_session

log = logging.getLogger(__name__)


@dataclass
class App:
    settings: Settings
    engine: Engine
    ctx: Context
    channels: dict[str, Channel] = field(default_factory=dict)


def utcnow() -> datetime:
    return datetime.now(UTC)


def build_context(settings: Settings) -> Context:
    return Context(
        business_name=settings.business_name,
        business_contact=settings.business_contact,
        kra_contact=settings.kra_contact,
        office_hours=settings.office_hours,
        lookup_limit_per_hour=settings.lookup_limit_per_hour,
        alert_grace_seconds=settings.alert_grace_seconds,
        max_message_chars=settings.max_message_chars,
        job_pattern=settings.job_ref_regex,
    )


def build_app(settings: Settings | None = None, *, migrate: bool = True) -> App:
    """Open the database (creating or upgrading it) and bootstrap the admins from CARGOBOT_ADMINS."""
    settings = settings or Settings()
    engine = make_engine(
        settings.database_url, pool_size=settings.db_pool_size, max_overflow=settings.db_max_overflow
    )
    if migrate:
        init_db(engine)
        if settings.admin_addresses:
            with write_session(engine) as session:
                repo.ensure_admins(session=session, addresses=settings.admin_addresses, now=utcnow())
    return App(settings=settings, engine=engine, ctx=build_context(settings))


def check_channel_settings(settings: Settings) -> None:
    """SystemExit naming the setting a configured channel lacks to send."""
    if settings.whatsapp_enabled:
        for name, value in (
            ("TWILIO_AUTH_TOKEN", settings.twilio_auth_token.get_secret_value()),
            ("TWILIO_WHATSAPP_FROM", settings.twilio_whatsapp_from),
        ):
            if not value:
                raise SystemExit(f"WhatsApp is configured (TWILIO_ACCOUNT_SID) but {name} is not set")


def build_channels(settings: Settings, *, console_out: TextIO | None = None) -> dict[str, Channel]:
    """The outbound channels that are configured; one clear log line for each that is not."""
    from bot.console_channel import ConsoleChannel

    check_channel_settings(settings)

    channels: dict[str, Channel] = {}
    if console_out is not None:
        channels["console"] = ConsoleChannel(console_out)
    if settings.telegram_enabled:
        from bot.telegram_channel import TelegramChannel

        channels["telegram"] = TelegramChannel(
            settings, connection_pool_size=max(8, settings.dispatch_concurrency)
        )
    else:
        log.info("Telegram is disabled: TELEGRAM_BOT_TOKEN is not set")
    if settings.whatsapp_enabled:
        from bot.whatsapp_channel import WhatsAppChannel

        channels["whatsapp"] = WhatsAppChannel(settings)
    else:
        log.info("WhatsApp is disabled: TWILIO_ACCOUNT_SID is not set")
    return channels
