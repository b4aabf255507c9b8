"""Writing alerts: the outbox rows a change calls for, in the same transaction as the change.

Each row is rendered now, in its recipient's language, and keyed (event, recipient) so one event
can never produce two messages to one person. The dispatcher (``bot.dispatcher``) delivers them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlmodel import Session

from handlers import catalogue
from handlers.labels import reference_label
from handlers.timefmt import format_window, timezone_for_address
from storage import repo
from storage.models import Contact, MaintenanceWindow, Shipment

RELEASED_STAGES = ("released", "collected", "delivered")

# A notice that iCMS is back is still worth sending this long after the window ended.
_ENDED_SHELF_LIFE = timedelta(hours=6)


@dataclass(frozen=True)
class ShipmentEvent:
    """A change on one shipment that subscribers may hear about."""

    kind: str  # release | hold | hold_cleared | stage
    shipment: Shipment
    change_id: str
    hold: str | None = None
    stage: str | None = None


def outbox_row(
    *,
    event_key: str,
    recipient: str,
    kind: str,
    text: str,
    now: datetime,
    due_at: datetime,
    template: str | None = None,
    template_vars: dict[str, str] | None = None,
    shipment_id: int | None = None,
    change_id: str | None = None,
    expires_at: datetime | None = None,
) -> dict[str, Any]:
    """One outbox row, ready for ``repo.enqueue``: pending, due at ``due_at``."""
    return {
        "event_key": event_key,
        "recipient": recipient,
        "kind": kind,
        "text": text,
        "template": template,
        "template_vars": json.dumps(template_vars) if template_vars else None,
        "shipment_id": shipment_id,
        "change_id": change_id,
        "status": "pending",
        "due_at": due_at,
        "expires_at": expires_at,
        "attempts": 0,
        "force_template": False,
        "created_at": now,
    }


def _footer(lang: str) -> str:
    return catalogue.text("alert.footer_stop", lang)


def queue_shipment_event(*, session: Session, event: ShipmentEvent, now: datetime, due_at: datetime) -> int:
    """Alert the shipment's subscribers; stage changes only reach those who asked for ALL."""
    shipment = event.shipment
    assert shipment.id is not None
    rows = []
    for sub, contact in repo.subscribers(session=session, shipment_id=shipment.id):
        if contact.opted_out or (event.kind == "stage" and not sub.all_stages):
            continue
        lang = contact.language
        reference = repo.get_reference(session=session, value=sub.reference)
        label = reference_label(reference.kind if reference else "job", sub.reference, lang)
        values: dict[str, Any] = {"ref_label": label, "ref": sub.reference}
        template = None
        if event.kind == "release":
            key, template = "alert.released", "release"
        elif event.kind in ("hold", "hold_cleared"):
            assert event.hold is not None
            key, template = ("alert.hold_raised" if event.kind == "hold" else "alert.hold_cleared"), "hold"
            for part in ("title", "meaning", "action", "next"):
                values[f"hold_{part}"] = catalogue.text(f"hold.{event.hold}.{part}", lang)
        else:
            stage = event.stage or shipment.stage
            key = "alert.stage_changed"
            for part in ("title", "meaning", "action", "next"):
                values[f"stage_{part}"] = catalogue.text(f"stage.{stage}.{part}", lang)
        text = catalogue.text(key, lang, **values) + "\n" + _footer(lang)
        template_vars = {"1": sub.reference, "2": values.get("hold_title") or values.get("stage_title") or ""}
        detail = event.hold or event.stage or ""
        rows.append(
            outbox_row(
                event_key=f"shipment:{shipment.id}:{event.kind}:{detail}:{event.change_id}",
                recipient=contact.address,
                kind=event.kind,
                text=text,
                now=now,
                due_at=due_at,
                template=template,
                template_vars=template_vars,
                shipment_id=shipment.id,
                change_id=event.change_id,
            )
        )
    return repo.enqueue(session=session, rows=rows)


def maintenance_recipients(*, session: Session) -> list[Contact]:
    """Subscribers whose shipments are not yet released, and staff (who may not be contacts yet)."""
    contacts = {
        c.address: c
        for c in repo.unreleased_subscriber_contacts(session=session, released_stages=RELEASED_STAGES)
        if not c.opted_out
    }
    for staff in repo.list_staff(session=session):
        if staff.address not in contacts:
            contact = repo.get_contact(session=session, address=staff.address)
            contacts[staff.address] = contact or Contact(address=staff.address, created_at=staff.added_at)
    return list(contacts.values())


MAINTENANCE_PHASES = ("announced", "reminder", "started", "ended", "cancelled")


def maintenance_event_keys(window: MaintenanceWindow) -> list[str]:
    """Every outbox event key a window's notices use (looked up by key, so by index)."""
    return [f"maintenance:{window.id}:{phase}" for phase in MAINTENANCE_PHASES]


def phase_moment(window: MaintenanceWindow, phase: str) -> datetime:
    if phase == "reminder":
        return window.starts_at - timedelta(hours=12)
    if phase == "started":
        return window.starts_at
    if phase == "ended":
        return window.ends_at
    return window.announced_at


def phase_expiry(window: MaintenanceWindow, phase: str) -> datetime:
    if phase in ("announced", "reminder", "cancelled"):
        return window.starts_at
    if phase == "started":
        return window.ends_at
    return window.ends_at + _ENDED_SHELF_LIFE


def queue_maintenance_phase(
    *,
    session: Session,
    window: MaintenanceWindow,
    phase: str,
    now: datetime,
    recipients: list[Contact] | None = None,
) -> int:
    """Write one phase's notice (announced, reminder, started, ended, cancelled) to everyone it concerns."""
    assert window.id is not None
    expires = phase_expiry(window, phase)
    if now >= expires:
        return 0  # its moment has passed: a late "starting" after the window ended helps nobody
    key = {
        "announced": "alert.maintenance_announced",
        "reminder": "alert.maintenance_reminder",
        "started": "alert.maintenance_started",
        "ended": "alert.maintenance_ended",
        "cancelled": "alert.maintenance_cancelled",
    }[phase]
    rows = []
    for contact in recipients if recipients is not None else maintenance_recipients(session=session):
        lang, tz = contact.language, timezone_for_address(contact.address)
        window_text = format_window(window.starts_at, window.ends_at, lang, tz)
        until = format_window(window.ends_at, window.ends_at, lang, tz)
        text = catalogue.text(key, lang, window=window_text, until=until) + "\n" + _footer(lang)
        rows.append(
            outbox_row(
                event_key=f"maintenance:{window.id}:{phase}",
                recipient=contact.address,
                kind=f"maintenance_{phase}",
                text=text,
                now=now,
                due_at=max(now, phase_moment(window, phase)),
                template="maintenance",
                template_vars={"1": window_text},
                expires_at=expires,
            )
        )
    return repo.enqueue(session=session, rows=rows)


def plan_due_maintenance(*, session: Session, now: datetime) -> int:
    """Write each window's reminder / started / ended notices once their moment comes.

    Recipients are worked out at that moment, so someone who subscribed after the announcement
    still hears that iCMS is down. A reminder is skipped when the announcement came less than
    12 hours before the window.
    """
    written = 0
    for window in repo.upcoming_windows(session=session, now=now - timedelta(hours=6)):
        planned = set(filter(None, window.planned_phases.split(",")))
        for phase in ("reminder", "started", "ended"):
            if phase in planned or phase_moment(window, phase) > now:
                continue
            skip = phase == "reminder" and window.announced_at >= phase_moment(window, "reminder")
            if not skip:
                written += queue_maintenance_phase(session=session, window=window, phase=phase, now=now)
            planned.add(phase)
        window.planned_phases = ",".join(sorted(planned))
    return written


def queue_agent_request(
    *,
    session: Session,
    contact: Contact,
    text: str,
    now: datetime,
    inbound_key: str,
    media: tuple[str, ...] = (),
) -> int:
    """Tell every staff member that a customer asked for a person (or sent media we cannot read)."""
    name = f" ({contact.display_name})" if contact.display_name else ""
    lines = [f"A customer asks for a person: {contact.address}{name}", f"Message: {text[:1000]}"]
    if media:
        lines.append("Media: " + " ".join(link.replace("\x00", "") for link in media))
    body = "\n".join(lines)
    rows = [
        outbox_row(
            event_key=f"agent:{inbound_key}",
            recipient=staff.address,
            kind="agent",
            text=body,
            now=now,
            due_at=now,
        )
        for staff in repo.list_staff(session=session)
        if staff.address != contact.address
    ]
    return repo.enqueue(session=session, rows=rows)


def queue_broadcast(*, session: Session, text: str, author: str, now: datetime, broadcast_id: str) -> int:
    rows = [
        outbox_row(
            event_key=f"broadcast:{broadcast_id}",
            recipient=contact.address,
            kind="broadcast",
            text=text + "\n" + _footer(contact.language),
            now=now,
            due_at=now,
        )
        for contact in repo.all_reachable_contacts(session=session)
        if contact.address != author
    ]
    return repo.enqueue(session=session, rows=rows)
