"""What the handlers need to know about the business, handed in by the composition root."""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class Context:
    business_name: str = "Example Freight UK-Kenya"
    business_contact: str = "WhatsApp +44 7700 900123"
    kra_contact: str = "KRA contact centre"
    office_hours: str = "Mon-Fri 08:00-17:00"
    lookup_limit_per_hour: int = 30
    alert_grace_seconds: int = 60
    max_message_chars: int = 4096
    job_pattern: re.Pattern[str] | None = None
