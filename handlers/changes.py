"""Every change to a shipment, in one place: the staff commands and the CSV import both come here.

A change updates the shipment (``updated_at`` / ``updated_by``), writes a timeline event carrying
what ``/undo`` needs to restore the previous state, and writes the alerts it calls for, due after
the grace period so a mistaken change can be undone before any customer hears of it. One
:class:`Change` (one ``change_id``) groups everything a single command or import row did.

Validation raises :class:`ChangeError` before anything is written; its message is for staff.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import phonenumbers
from sqlmodel import Session

from handlers.alerts import ShipmentEvent, queue_shipment_event
from handlers.labels import reference_label
from handlers.references import Reference
from handlers.stages import is_released
from handlers.timefmt import EAT
from handlers.types import ADDRESS
from storage import repo
from storage.models import Contact, Shipment, TimelineEvent

# Fields /undo restores by value; datetimes travel through JSON as ISO strings.
_DATETIME_FIELDS = frozenset({"eta", "updated_at"})
_MAX_LENGTHS = {"transport": 100, "consignee": 200, "goods": 500, "release_number": 60}


class ChangeError(ValueError):
    """A change refused before anything was written; ``str(exc)`` tells staff why."""


@dataclass
class Change:
    """One staff change (a command or an import row): who, when, and the id ``/undo`` reverts as one."""

    session: Session
    author: str
    now: datetime
    grace_seconds: int
    change_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    alerts_queued: int = 0

    @property
    def due_at(self) -> datetime:
        return self.now + timedelta(seconds=self.grace_seconds)


# --- reading what staff type -----------------------------------------------------------------


def label(ref: Reference) -> str:
    """ "Container MSKU9070323 (Maersk)" """
    return reference_label(ref.kind, ref.value, "en", ref.carrier)


def reference_problem(ref: Reference) -> str | None:
    """Why a recognised reference cannot be used for a shipment, or None."""
    if ref.kind == "kra_pin":
        return f"{ref.value} is a KRA PIN, not a shipment reference."
    if not ref.valid:
        hint = f" Did you mean {ref.suggestion}?" if ref.suggestion else ""
        return f"{label(ref)} has a wrong check digit.{hint}"
    return None


_MONTHS = {
    name: number
    for number, names in enumerate(
        (
            "jan january", "feb february", "mar march", "apr april", "may", "jun june", "jul july",
            "aug august", "sep sept september", "oct october", "nov november", "dec december",
        ),
        start=1,
    )
    for name in names.split()
}  # fmt: skip
_MON = "(?:" + "|".join(sorted(_MONTHS, key=len, reverse=True)) + r")\.?"
_WEEKDAY = r"(?:(?:mon|tue|tues|wed|thu|thur|thurs|fri|sat|sun)(?:day|nesday|sday|urday)?\.?,?\s+)?"
_YEAR = r"(?P<year>20[0-9]{2})(?![0-9A-Za-z])"
_DATES = (
    re.compile(r"(?P<year>20[0-9]{2})-(?P<month>[0-9]{1,2})-(?P<day>[0-9]{1,2})(?![0-9])"),
    re.compile(r"(?P<day>[0-9]{1,2})[/.-](?P<month>[0-9]{1,2})[/.-](?P<year>20[0-9]{2}|[0-9]{2})(?![0-9])"),
    re.compile(
        _WEEKDAY
        + rf"(?P<day>[0-9]{{1,2}})(?:st|nd|rd|th)?[\s-]*(?P<mon>{_MON})(?![a-z])(?:,?[\s-]*{_YEAR})?",
        re.IGNORECASE,
    ),
    re.compile(
        _WEEKDAY
        + rf"(?P<mon>{_MON})(?![a-z])\s*(?P<day>[0-9]{{1,2}})(?:st|nd|rd|th)?(?![0-9])(?:,?\s*{_YEAR})?",
        re.IGNORECASE,
    ),
    re.compile(r"(?P<relative>today|tomorrow)\b", re.IGNORECASE),
)
_TIME = re.compile(
    r"(?:\s*,?\s*(?:at\s+)?|T)(?P<hour>[0-9]{1,2})[:.](?P<minute>[0-9]{2})(?![0-9])(?:\s*EAT\b)?"
)
# A date without a time is taken as midday in Kenya: the same calendar day in EAT and in UK time.
_DEFAULT_TIME = time(12, 0)


def parse_date(text: str, *, now: datetime) -> tuple[datetime, str]:
    """Read a date (and an optional HH:MM, EAT) at the start of ``text``: 2026-12-02, 02/12/2026 (day
    first), 2 Dec, Dec 2, Wed 2 December 2026 14:00, today, tomorrow. Returns it in UTC with the rest.

    A missing year is the nearest occurrence of that day to ``now``, so last week's arrival and next
    month's ETA both read right.
    """
    stripped = text.lstrip()
    today = now.astimezone(EAT).date()
    for pattern in _DATES:
        m = pattern.match(stripped)
        if m is None:
            continue
        g = m.groupdict()
        if g.get("relative"):
            day = today + timedelta(days=1 if g["relative"].lower() == "tomorrow" else 0)
        else:
            month = _MONTHS[g["mon"].lower().rstrip(".")] if g.get("mon") else int(g["month"])
            day = _make_date(int(g["day"]), month, g.get("year"), today, m.group(0))
        rest = stripped[m.end() :]
        clock = _DEFAULT_TIME
        t = _TIME.match(rest)
        if t is not None:
            hour, minute = int(t["hour"]), int(t["minute"])
            if hour > 23 or minute > 59:
                raise ChangeError(f'I could not read the time "{t.group(0).strip()}".')
            clock, rest = time(hour, minute), rest[t.end() :]
        return datetime.combine(day, clock, tzinfo=EAT).astimezone(UTC), rest.strip()
    word = stripped.split(maxsplit=1)[0] if stripped else ""
    raise ChangeError(
        f'I could not read a date in "{word}". Write it as 2026-12-02, 02/12/2026 or 2 Dec '
        "(a time is optional: 14:00)."
    )


def _make_date(day: int, month: int, year: str | None, today: date, typed: str) -> date:
    try:
        if year is not None:
            return date(2000 + int(year) if len(year) == 2 else int(year), month, day)
        candidates = []
        for y in (today.year - 1, today.year, today.year + 1):
            try:
                candidates.append(date(y, month, day))
            except ValueError:  # 29 February outside a leap year
                continue
        if candidates:
            return min(candidates, key=lambda d: abs(d - today))
        raise ValueError
    except ValueError:
        raise ChangeError(f'"{typed}" is not a date.') from None


_PORTS = (
    ("Mombasa", r"mombasa(?:\s+port)?|kilindini"),
    ("JKIA", r"jkia|jomo\s+kenyatta(?:\s+international)?(?:\s+airport)?|nairobi\s+airport"),
    ("ICD Embakasi", r"icd(?:\s+embakasi|\s+nairobi)?|embakasi(?:\s+icd)?|nairobi\s+icd"),
)
_PORT = re.compile(
    r"(?:\b(?:at|to|into|port|via)\s*:?\s+)?\b(?:"
    + "|".join(f"(?P<p{i}>{pattern})" for i, (_, pattern) in enumerate(_PORTS))
    + r")\b",
    re.IGNORECASE,
)
PORTS = tuple(name for name, _ in _PORTS)


def parse_port(text: str) -> tuple[str | None, str]:
    """Find a port of discharge anywhere in ``text`` ("at Mombasa", "JKIA", "ICD Embakasi").

    Returns the port's name (or None) and the text without it.
    """
    m = _PORT.search(text)
    if m is None:
        return None, text.strip()
    port = PORTS[int((m.lastgroup or "p0")[1:])]
    rest = (text[: m.start()] + " " + text[m.end() :]).strip()
    return port, re.sub(r"\s{2,}", " ", rest)


_ADDRESS = re.compile(rf"(?:{ADDRESS.pattern})(?!\S)")
_PHONE = re.compile(r"\+?[0-9][0-9()-]*(?:\s+[0-9()-]+)*")
_TELEGRAM_ID = re.compile(r"-?[1-9][0-9]{4,15}(?!\S)")


def parse_contact(text: str) -> tuple[str, str]:
    """Read a customer at the start of ``text`` and return their address and the rest.

    ``+2547…`` / ``0712…`` / ``07700 900…`` are WhatsApp numbers (national numbers read as Kenyan,
    else UK); other bare digits are a Telegram chat id; ``whatsapp:``, ``telegram:`` and ``console:``
    addresses are taken as written.
    """
    stripped = text.lstrip()
    m = _ADDRESS.match(stripped)
    if m is not None:
        return m.group(0), stripped[m.end() :].strip()
    m = _PHONE.match(stripped)
    if m is not None and stripped.startswith(("+", "0")):
        # The number may be typed in groups and be followed by a note with digits: the longest run
        # of groups that is a phone number wins.
        groups = m.group(0).split()
        for strict in (True, False):
            for n in range(len(groups), 0, -1):
                number = _e164(" ".join(groups[:n]), strict=strict)
                if number is not None:
                    rest = stripped
                    for group in groups[:n]:
                        rest = rest[rest.index(group) + len(group) :]
                    return "whatsapp:" + number, rest.strip()
    elif (t := _TELEGRAM_ID.match(stripped)) is not None:
        return f"telegram:{t.group(0)}", stripped[t.end() :].strip()
    word = stripped.split(maxsplit=1)[0] if stripped else ""
    raise ChangeError(
        f'I could not read "{word}" as a customer: give a phone number (+254 7…, 07…, +44 7…), '
        "a Telegram chat id, or an address such as whatsapp:+2547…"
    )


def _e164(typed: str, *, strict: bool) -> str | None:
    """The number in E.164, or None. National numbers are Kenyan (10 digits) or UK (11 digits).

    ``strict`` asks for a number in use; otherwise one of the right length will do (fictional
    ranges, such as the UK drama numbers, are possible without being valid).
    """
    digits = re.sub(r"[^0-9+]", "", typed)
    if digits.startswith("+"):
        regions: tuple[str | None, ...] = (None,)
    else:
        regions = {10: ("KE",), 11: ("GB",)}.get(len(digits), ())
    for region in regions:
        try:
            number = phonenumbers.parse(digits, region)
        except phonenumbers.NumberParseException:
            continue
        if strict:
            usable = phonenumbers.is_valid_number(number)
        else:
            reason = phonenumbers.is_possible_number_with_reason(number)
            usable = reason == phonenumbers.ValidationResult.IS_POSSIBLE
        if usable:
            return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    return None


def checked_text(name: str, value: str) -> str:
    """``value`` stripped, refused when longer than the column allows."""
    value = value.strip()
    limit = _MAX_LENGTHS.get(name)
    if limit is not None and len(value) > limit:
        raise ChangeError(
            f"The {name.replace('_', ' ')} is too long ({len(value)} characters; at most {limit})."
        )
    return value


# --- finding shipments -----------------------------------------------------------------------


def check_references(session: Session, refs: Sequence[Reference], *, shipment_id: int | None = None) -> None:
    """Refuse typos and PINs, and an entry, IDF or house reference that belongs to another shipment.

    A container, master AWB or master B/L (``repo.SHARED_KINDS``) may be shared by many shipments.
    """
    for ref in refs:
        problem = reference_problem(ref)
        if problem:
            raise ChangeError(problem)
        if ref.kind in repo.SHARED_KINDS:
            continue
        owners = [
            s.id
            for s in repo.shipments_for_reference(session=session, value=ref.value)
            if s.id != shipment_id
        ]
        if owners:
            raise ChangeError(
                f"{label(ref)} is already on file (shipment #{owners[0]}). An entry, IDF or house reference "
                f"belongs to one shipment; see /find {ref.value}."
            )


def own_references(session: Session, shipment: Shipment) -> list[str]:
    """The references that name only this shipment (entries, IDFs, house references)."""
    assert shipment.id is not None
    refs = repo.references_of(session=session, shipment_id=shipment.id)
    return [r.value for r in refs if r.kind not in repo.SHARED_KINDS] or [r.value for r in refs]


# --- changes ---------------------------------------------------------------------------------


def _encode(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else value


def _record(
    change: Change,
    shipment: Shipment,
    *,
    action: str,
    detail: str | None = None,
    note: str | None = None,
    public: bool = False,
    undo: dict[str, Any] | None = None,
    fields: dict[str, Any] | None = None,
) -> None:
    """Stamp the shipment and write the timeline event; ``fields`` are the previous values to restore."""
    assert shipment.id is not None
    previous = {"updated_at": shipment.updated_at, "updated_by": shipment.updated_by, **(fields or {})}
    shipment.updated_at, shipment.updated_by = change.now, change.author
    repo.add_event(
        session=change.session,
        shipment_id=shipment.id,
        at=change.now,
        author=change.author,
        action=action,
        detail=detail,
        note=note or None,
        public=public,
        change_id=change.change_id,
        undo={**(undo or {}), "fields": {k: _encode(v) for k, v in previous.items()}},
    )


def _alert(
    change: Change, shipment: Shipment, kind: str, *, hold: str | None = None, stage: str | None = None
) -> None:
    event = ShipmentEvent(kind=kind, shipment=shipment, change_id=change.change_id, hold=hold, stage=stage)
    change.alerts_queued += queue_shipment_event(
        session=change.session, event=event, now=change.now, due_at=change.due_at
    )


def create_shipment(
    change: Change, refs: Sequence[Reference], *, stage: str = "booked", note: str | None = None
) -> Shipment:
    """A new shipment with these references (shared ones are linked, exclusive ones must be new)."""
    if not refs:
        raise ChangeError("A shipment needs at least one reference.")
    check_references(change.session, refs)
    shipment = repo.create_shipment(session=change.session, now=change.now, author=change.author, stage=stage)
    assert shipment.id is not None
    for ref in refs:
        repo.link_reference(session=change.session, shipment_id=shipment.id, kind=ref.kind, value=ref.value)
    detail = f"references {', '.join(r.value for r in refs)}; stage {stage}"
    _record(change, shipment, action="create", detail=detail, note=note, undo={"created": True})
    return shipment


def link_references(change: Change, shipment: Shipment, refs: Sequence[Reference]) -> list[Reference]:
    """Add references to a shipment; returns the ones that were not linked already."""
    assert shipment.id is not None
    check_references(change.session, refs, shipment_id=shipment.id)
    have = {r.value for r in repo.references_of(session=change.session, shipment_id=shipment.id)}
    new = [r for r in refs if r.value not in have]
    if not new:
        return []
    ids = [
        repo.link_reference(session=change.session, shipment_id=shipment.id, kind=r.kind, value=r.value).id
        for r in new
    ]
    _record(change, shipment, action="link", detail=", ".join(r.value for r in new), undo={"unlink": ids})
    return new


@dataclass(frozen=True)
class CustomerLink:
    contact: Contact
    changed: bool
    subscribed: bool  # an active subscription now exists


def link_customer(
    change: Change, shipment: Shipment, address: str, *, optin: bool, reference: str
) -> CustomerLink:
    """Let a customer read the shipment's details. ``optin`` records consent given at booking and
    subscribes them to its alerts under ``reference``; linking alone does not subscribe."""
    assert shipment.id is not None
    session = change.session
    contact = repo.get_or_create_contact(session=session, address=address, now=change.now)
    assert contact.id is not None
    link = repo.get_contact_link(session=session, shipment_id=shipment.id, contact_id=contact.id)
    sub = repo.get_subscription(session=session, contact_id=contact.id, shipment_id=shipment.id)
    # Consent is recorded once: a customer who later said UNSUBSCRIBE or STOP is not signed up again.
    new_consent = optin and (link is None or link.consent_at is None)
    if link is not None and not new_consent:
        return CustomerLink(contact, changed=False, subscribed=sub is not None and sub.active)
    undo: dict[str, Any] = {
        "contact": {
            "id": contact.id,
            "link": None if link is None else {"consent_at": _encode(link.consent_at)},
            "subscription": None
            if sub is None
            else {
                "active": sub.active,
                "stopped": sub.stopped,
                "all_stages": sub.all_stages,
                "reference": sub.reference,
            },
        }
    }
    repo.link_contact(
        session=session,
        shipment_id=shipment.id,
        contact_id=contact.id,
        consent_at=change.now if optin else None,
    )
    if new_consent:
        sub = repo.subscribe(
            session=session,
            contact_id=contact.id,
            shipment_id=shipment.id,
            reference=reference,
            all_stages=False,
            now=change.now,
        )
    detail = address + ("; consent given, subscribed" if new_consent else "")
    _record(change, shipment, action="customer", detail=detail, undo=undo)
    return CustomerLink(contact, changed=True, subscribed=sub is not None and sub.active)


@dataclass(frozen=True)
class StageChange:
    previous: str
    changed: bool
    cleared: tuple[str, ...] = ()  # holds the release cleared


def set_stage(
    change: Change,
    shipment: Shipment,
    stage: str,
    *,
    note: str | None = None,
    release_number: str | None = None,
) -> StageChange:
    """Move the shipment to ``stage`` (skips and corrections allowed).

    Crossing into released (or later) is the Customs Release Message: the remaining holds are
    cleared and subscribers get the release alert only; any other move alerts those who asked for
    every stage.
    """
    assert shipment.id is not None
    previous, old_number = shipment.stage, shipment.release_number
    number = checked_text("release_number", release_number) if release_number else None
    if stage == previous and (number is None or number == old_number):
        return StageChange(previous, changed=False)
    crossing = is_released(stage) and not is_released(previous)
    holds = repo.active_holds(session=change.session, shipment_id=shipment.id) if crossing else []
    for hold in holds:
        hold.cleared_at, hold.cleared_by = change.now, change.author
    cleared = tuple(dict.fromkeys(h.kind for h in holds))
    shipment.stage = stage
    if number:
        shipment.release_number = number
    parts = [f"{previous} → {stage}" if stage != previous else stage]
    if number:
        parts.append(f"release message {number}")
    if cleared:
        parts.append("cleared holds: " + ", ".join(cleared))
    _record(
        change,
        shipment,
        action="stage",
        detail="; ".join(parts),
        note=note,
        undo={"reopen": [h.id for h in holds]},
        fields={"stage": previous, "release_number": old_number},
    )
    if crossing:
        _alert(change, shipment, "release")
    elif stage != previous:
        _alert(change, shipment, "stage", stage=stage)
    return StageChange(previous, changed=True, cleared=cleared)


def raise_hold(change: Change, shipment: Shipment, hold: str, *, note: str | None = None) -> None:
    assert shipment.id is not None
    if is_released(shipment.stage):
        raise ChangeError(
            f"Shipment #{shipment.id} is already {shipment.stage}; a hold blocks release, so set an earlier "
            "stage first (or /undo the release)."
        )
    active = repo.active_holds(session=change.session, shipment_id=shipment.id)
    if any(h.kind == hold for h in active):
        raise ChangeError(f"Shipment #{shipment.id} is already on hold for {hold}.")
    row = repo.add_hold(
        session=change.session,
        shipment_id=shipment.id,
        kind=hold,
        note=note,
        at=change.now,
        author=change.author,
    )
    _record(change, shipment, action="hold", detail=hold, note=note, undo={"delete_hold": row.id})
    _alert(change, shipment, "hold", hold=hold)


def clear_holds(
    change: Change, shipment: Shipment, holds: Collection[str] | None, *, note: str | None = None
) -> list[str]:
    """Clear the named holds (all of them when ``holds`` is None); returns the kinds cleared."""
    assert shipment.id is not None
    active = repo.active_holds(session=change.session, shipment_id=shipment.id)
    kinds = list(dict.fromkeys(h.kind for h in active))
    if not active:
        raise ChangeError(f"Shipment #{shipment.id} has no active holds.")
    missing = [h for h in holds or () if h not in kinds]
    if missing:
        raise ChangeError(
            f"Shipment #{shipment.id} is not on hold for {', '.join(missing)}; "
            f"active holds: {', '.join(kinds)}."
        )
    targets = [h for h in active if holds is None or h.kind in holds]
    for hold in targets:
        hold.cleared_at, hold.cleared_by = change.now, change.author
    cleared = list(dict.fromkeys(h.kind for h in targets))
    _record(
        change,
        shipment,
        action="clear",
        detail=", ".join(cleared),
        note=note,
        undo={"reopen": [h.id for h in targets]},
    )
    for kind in cleared:
        _alert(change, shipment, "hold_cleared", hold=kind)
    return cleared


def set_fields(
    change: Change, shipment: Shipment, *, action: str, note: str | None = None, **values: Any
) -> bool:
    """Set plain shipment fields (eta, transport, port; consignee, goods, packages); None leaves one as
    it is. Returns whether anything changed."""
    changed = {k: v for k, v in values.items() if v is not None and getattr(shipment, k) != v}
    if not changed:
        return False
    previous = {k: getattr(shipment, k) for k in changed}
    for key, value in changed.items():
        setattr(shipment, key, value)
    detail = "; ".join(f"{k} {_shown(v)}" for k, v in changed.items())
    _record(change, shipment, action=action, detail=detail, note=note, fields=previous)
    return True


def _shown(value: Any) -> str:
    return value.astimezone(EAT).strftime("%Y-%m-%d %H:%M EAT") if isinstance(value, datetime) else str(value)


def add_note(change: Change, shipment: Shipment, text: str, *, public: bool) -> None:
    if not text.strip():
        raise ChangeError("The note is empty.")
    _record(
        change,
        shipment,
        action="note",
        detail="public" if public else "internal",
        note=text.strip(),
        public=public,
    )


# --- undo ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Undone:
    change_id: str
    actions: tuple[str, ...]  # what was reverted, e.g. ("stage", "hold")
    shipment_ids: tuple[int, ...]
    removed: tuple[int, ...]  # shipments the change had created, now gone
    cancelled_alerts: int


def undo_last(*, session: Session, author: str, now: datetime, grace_seconds: int) -> Undone | None:
    """Revert ``author``'s last change made within ``grace_seconds``; None when there is none.

    Restores stage, holds, fields, references and customer links from the events' undo data, marks
    the events undone, cancels the alerts still waiting, and records an "undo" event (a shipment the
    change created is removed instead).
    """
    events = repo.latest_change_by(
        session=session, author=author, since=now - timedelta(seconds=grace_seconds)
    )
    if not events:
        return None
    change_id = events[0].change_id
    assert change_id is not None
    by_shipment: dict[int, list[TimelineEvent]] = {}
    for event in events:
        by_shipment.setdefault(event.shipment_id, []).append(event)
    for shipment_id, shipment_events in by_shipment.items():
        _refuse_if_changed_since(session, shipment_id, shipment_events[-1])
    kept, removed = [], []
    for shipment_id, shipment_events in by_shipment.items():
        shipment = repo.get_shipment(session=session, shipment_id=shipment_id)
        if shipment is None:
            continue
        data = [json.loads(e.undo or "{}") for e in shipment_events]
        if any(d.get("created") for d in data):
            repo.delete_shipment(session=session, shipment=shipment)
            removed.append(shipment_id)
            continue
        for event, undo in reversed(list(zip(shipment_events, data, strict=True))):
            _revert(session, shipment, event, undo)
            # An undone public note must stop showing to customers; the detail still says "public".
            event.undone_at, event.public = now, False
        actions = ", ".join(dict.fromkeys(e.action for e in shipment_events))
        repo.add_event(
            session=session,
            shipment_id=shipment_id,
            at=now,
            author=author,
            action="undo",
            detail=f"{actions} (change {change_id[:8]})",
        )
        kept.append(shipment_id)
    cancelled = repo.cancel_pending_for_change(session=session, change_id=change_id)
    session.flush()
    return Undone(
        change_id=change_id,
        actions=tuple(dict.fromkeys(e.action for e in events)),
        shipment_ids=tuple(kept),
        removed=tuple(removed),
        cancelled_alerts=cancelled,
    )


# Later changes by someone else that an undo would overwrite; notes and undos overwrite nothing.
_HARMLESS_ACTIONS = frozenset({"note", "undo"})


def _refuse_if_changed_since(session: Session, shipment_id: int, last: TimelineEvent) -> None:
    later = [
        e
        for e in repo.timeline(session=session, shipment_id=shipment_id)
        if (e.id or 0) > (last.id or 0) and e.undone_at is None and e.action not in _HARMLESS_ACTIONS
    ]
    if later:
        raise ChangeError(
            f"{later[-1].author} changed shipment #{shipment_id} after you ({later[-1].action}), so /undo "
            "would overwrite their change. Nothing was undone; correct it with a new command."
        )


def _revert(session: Session, shipment: Shipment, event: TimelineEvent, undo: dict[str, Any]) -> None:
    assert shipment.id is not None
    # The "last updated" stamp goes back only when nobody (a note, say) has stamped it since.
    restamp = shipment.updated_by == event.author and shipment.updated_at == event.at
    for key, value in undo.get("fields", {}).items():
        if key in ("updated_at", "updated_by") and not restamp:
            continue
        if key in _DATETIME_FIELDS and value is not None:
            value = datetime.fromisoformat(value)
        setattr(shipment, key, value)
    for hold in repo.get_holds(session=session, hold_ids=undo.get("reopen", [])):
        hold.cleared_at = hold.cleared_by = None
    if undo.get("delete_hold") is not None:
        repo.delete_hold(session=session, hold_id=undo["delete_hold"])
    if undo.get("unlink"):
        repo.unlink_references(session=session, shipment_id=shipment.id, reference_ids=undo["unlink"])
    if "contact" in undo:
        _revert_customer(session, shipment.id, undo["contact"])


def _revert_customer(session: Session, shipment_id: int, data: dict[str, Any]) -> None:
    contact_id = data["id"]
    link, sub = data["link"], data["subscription"]
    if link is None:
        repo.unlink_contact(session=session, shipment_id=shipment_id, contact_id=contact_id)
    else:
        row = repo.get_contact_link(session=session, shipment_id=shipment_id, contact_id=contact_id)
        if row is not None:
            row.consent_at = datetime.fromisoformat(link["consent_at"]) if link["consent_at"] else None
    current = repo.get_subscription(session=session, contact_id=contact_id, shipment_id=shipment_id)
    if current is None:
        return
    if sub is None:
        assert current.id is not None
        repo.delete_subscription(session=session, subscription_id=current.id)
    else:
        current.active, current.stopped = sub["active"], sub["stopped"]
        current.all_stages, current.reference = sub["all_stages"], sub["reference"]
