"""The one reader of the environment: every setting cargobot has, typed, with its default.

Tests build ``Settings(_env_file=None, database_url=...)``; processes build it once in the
composition root (``bot.app``). Nothing else reads ``os.environ``.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import AliasChoices, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from handlers.types import ADDRESS


def _env(name: str) -> AliasChoices:
    """Accept the documented environment name; keyword construction uses the field name."""
    return AliasChoices(name, name.lower())


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_file=".env", env_file_encoding="utf-8", extra="ignore", populate_by_name=True
    )

    # --- storage -----------------------------------------------------------------------
    database_url: str = Field("sqlite:///cargobot.db", validation_alias=_env("DATABASE_URL"))
    db_pool_size: int = Field(5, validation_alias=_env("CARGOBOT_DB_POOL_SIZE"))
    db_max_overflow: int = Field(10, validation_alias=_env("CARGOBOT_DB_MAX_OVERFLOW"))

    # --- people and the business ---------------------------------------------------------
    admins: str = Field("", validation_alias=_env("CARGOBOT_ADMINS"))
    business_name: str = Field("Example Freight UK-Kenya", validation_alias=_env("CARGOBOT_BUSINESS_NAME"))
    business_contact: str = Field(
        "WhatsApp +44 7700 900123 (clearance desk)", validation_alias=_env("CARGOBOT_BUSINESS_CONTACT")
    )
    kra_contact: str = Field(
        "KRA contact centre: callcentre@kra.go.ke, +254 20 4 999 999",
        validation_alias=_env("CARGOBOT_KRA_CONTACT"),
    )
    office_hours: str = Field(
        "Mon-Fri 08:00-17:00, Sat 09:00-13:00", validation_alias=_env("CARGOBOT_OFFICE_HOURS")
    )
    job_ref_pattern: str = Field("", validation_alias=_env("JOB_REF_PATTERN"))

    # --- conversation --------------------------------------------------------------------
    lookup_limit_per_hour: int = Field(30, validation_alias=_env("CARGOBOT_LOOKUP_LIMIT_PER_HOUR"))
    max_message_chars: int = Field(4096, validation_alias=_env("CARGOBOT_MAX_MESSAGE_CHARS"))

    # --- alerts --------------------------------------------------------------------------
    alert_grace_seconds: int = Field(60, validation_alias=_env("ALERT_GRACE_SECONDS"))
    alert_max_age_hours: float = Field(48, validation_alias=_env("ALERT_MAX_AGE_HOURS"))
    dispatch_interval_seconds: float = Field(2.0, validation_alias=_env("CARGOBOT_DISPATCH_INTERVAL_SECONDS"))
    dispatch_batch_size: int = Field(200, validation_alias=_env("CARGOBOT_DISPATCH_BATCH_SIZE"))
    dispatch_concurrency: int = Field(32, validation_alias=_env("CARGOBOT_DISPATCH_CONCURRENCY"))
    claim_lease_seconds: int = Field(30, validation_alias=_env("CARGOBOT_CLAIM_LEASE_SECONDS"))

    # --- WhatsApp through Twilio ---------------------------------------------------------
    twilio_account_sid: str = Field("", validation_alias=_env("TWILIO_ACCOUNT_SID"))
    twilio_auth_token: SecretStr = Field(SecretStr(""), validation_alias=_env("TWILIO_AUTH_TOKEN"))
    twilio_whatsapp_from: str = Field("", validation_alias=_env("TWILIO_WHATSAPP_FROM"))
    twilio_api_base_url: str = Field("https://api.twilio.com", validation_alias=_env("TWILIO_API_BASE_URL"))
    twilio_template_release: str = Field("", validation_alias=_env("TWILIO_TEMPLATE_RELEASE"))
    twilio_template_hold: str = Field("", validation_alias=_env("TWILIO_TEMPLATE_HOLD"))
    twilio_template_maintenance: str = Field("", validation_alias=_env("TWILIO_TEMPLATE_MAINTENANCE"))
    twilio_max_per_second: float = Field(10, validation_alias=_env("TWILIO_MAX_PER_SECOND"))

    # --- Telegram ------------------------------------------------------------------------
    telegram_bot_token: SecretStr = Field(SecretStr(""), validation_alias=_env("TELEGRAM_BOT_TOKEN"))
    telegram_webhook_secret: SecretStr = Field(
        SecretStr(""), validation_alias=_env("TELEGRAM_WEBHOOK_SECRET")
    )
    telegram_api_base_url: str = Field(
        "https://api.telegram.org/bot", validation_alias=_env("TELEGRAM_API_BASE_URL")
    )
    telegram_max_per_second: float = Field(30, validation_alias=_env("TELEGRAM_MAX_PER_SECOND"))
    # How long a webhook request waits for its replies to be confirmed before leaving the rest to
    # the worker: inside gunicorn's 30 s worker timeout, with room to settle the last send.
    telegram_reply_seconds: float = Field(
        10.0, gt=0, le=20, validation_alias=_env("CARGOBOT_TELEGRAM_REPLY_SECONDS")
    )

    # --- web -----------------------------------------------------------------------------
    public_base_url: str = Field("", validation_alias=_env("PUBLIC_BASE_URL"))
    max_request_bytes: int = Field(64 * 1024, validation_alias=_env("CARGOBOT_MAX_REQUEST_BYTES"))
    heartbeat_stale_seconds: int = Field(120, validation_alias=_env("CARGOBOT_HEARTBEAT_STALE_SECONDS"))

    # --- logging -------------------------------------------------------------------------
    log_level: str = Field("INFO", validation_alias=_env("LOG_LEVEL"))
    log_format: Literal["text", "json"] = Field("text", validation_alias=_env("LOG_FORMAT"))

    @model_validator(mode="after")
    def _admins_are_addresses(self) -> Settings:
        for address in self.admin_addresses:
            if not ADDRESS.fullmatch(address):
                raise ValueError(
                    f"CARGOBOT_ADMINS: {address!r} is not an address such as whatsapp:+254700000001, "
                    "telegram:123456789 or console:name"
                )
        return self

    @field_validator("job_ref_pattern")
    @classmethod
    def _pattern_compiles(cls, value: str) -> str:
        if value:
            try:
                re.compile(value)
            except re.error as exc:
                raise ValueError(f"JOB_REF_PATTERN is not a valid regular expression: {exc}") from exc
        return value

    @property
    def admin_addresses(self) -> list[str]:
        return [a.strip() for a in self.admins.split(",") if a.strip()]

    @property
    def job_ref_regex(self) -> re.Pattern[str] | None:
        return re.compile(self.job_ref_pattern, re.IGNORECASE) if self.job_ref_pattern else None

    @property
    def whatsapp_enabled(self) -> bool:
        return bool(self.twilio_account_sid)

    @property
    def telegram_enabled(self) -> bool:
        return bool(self.telegram_bot_token.get_secret_value())

    @property
    def telegram_webhook_mode(self) -> bool:
        return bool(self.public_base_url and self.telegram_webhook_secret.get_secret_value())

    def template_sid(self, kind: str | None) -> str:
        """The approved WhatsApp template for an alert kind (release, hold, maintenance), or ""."""
        templates = {
            "release": self.twilio_template_release,
            "hold": self.twilio_template_hold,
            "maintenance": self.twilio_template_maintenance,
        }
        return templates.get(kind or "", "")

    def has_template(self, kind: str | None) -> bool:
        return bool(self.template_sid(kind))

    def secrets(self) -> list[str]:
        """Every configured secret value, for log redaction."""
        values = [self.twilio_auth_token, self.telegram_bot_token, self.telegram_webhook_secret]
        return [v.get_secret_value() for v in values if v.get_secret_value()]
