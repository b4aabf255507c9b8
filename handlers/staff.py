"""Staff commands: an explicit registry (``COMMANDS``), and ``/help`` generated from it.

The router sends only staff here. Each command reads its arguments, refuses anything it cannot
read with a reply (never an exception), and makes its changes through ``handlers.changes``, inside
a savepoint so a refusal or failure half-way leaves nothing behind. Replies are English: staff are
internal; customer-facing text lives in the catalogue.
"""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from handlers import alerts, catalogue, changes
from handlers.changes import Change, ChangeError, label
from handlers.conversation import Turn
from handlers.labels import reference_label
from handlers.notices import NoticeParseError, parse_notice, parse_window_spec
from handlers.references import Reference, find_references
from handlers.stages import HOLDS, STAGES, is_released, parse_hold, parse_stage
from handlers.timefmt import EAT, LONDON, format_when, format_window
from handlers.types import Reply
from storage import repo
from storage.models import Contact, MaintenanceWindow, Outbox, Shipment, TimelineEvent

log = logging.getLogger(__name__)

BROADCAST_CONFIRM_WITHIN = timedelta(minutes=15)
BROADCAST_MAX_CHARS = 1500  # leaves room for the STOP footer within WhatsApp's 1600
_FIND_MAX_SHIPMENTS = 5
_TIMELINE_LINES = 15
_OUTBOX_LINES = 10


class CommandError(Exception):
    """The command was refused before anything was written; ``str(exc)`` is the reply."""


Handler = Callable[[Turn, str], str]


@dataclass(frozen=True)
class Command:
    handler: Handler
    usage: str
    description: str
    admin_only: bool = False


_COMMAND = re.compile(r"/(?P<name>[a-z_]+)(?:@\w+)?(?=\s|$)", re.IGNORECASE)


def _split(text: str) -> tuple[str, str] | None:
    m = _COMMAND.match(text.strip())
    if m is None:
        return None
    return m["name"].lower(), text.strip()[m.end() :].strip()


def is_command(text: str) -> bool:
    """Whether ``text`` starts with one of the registered commands ("/find@CargoBot" counts too)."""
    parsed = _split(text)
    return parsed is not None and parsed[0] in COMMANDS


def handle_command(turn: Turn, *, role: str) -> list[Reply]:
    """Run one staff command; the caller's transaction commits whatever it changed."""
    parsed = _split(turn.inbound.text)
    if parsed is None or parsed[0] not in COMMANDS:
        return [Reply("I do not know that command. /help lists them.")]
    name, args = parsed
    command = COMMANDS[name]
    if command.admin_only and role != "admin":
        return [Reply(f"/{name} is for admins only.")]
    try:
        with turn.session.begin_nested():
            text = command.handler(turn, args)
    except (CommandError, ChangeError) as exc:
        text = str(exc)
    except Exception:
        log.exception("staff command /%s failed", name)
        text = f"Sorry, /{name} failed and nothing was changed. The details are in the log."
    return [Reply(text)]


# --- reading arguments -----------------------------------------------------------------------


def _usage(name: str) -> CommandError:
    return CommandError(f"Usage: {COMMANDS[name].usage}")


def _reference_kinds(turn: Turn) -> str:
    kinds = (
        "References I read: container (MSKU9070323), air waybill (176-12345675), bill of lading "
        "(MAEU123456789), customs entry or IDF (24MBAIM400448715)"
    )
    return kinds + (", and our job numbers." if turn.ctx.job_pattern else ".")


def _leading_refs(turn: Turn, text: str) -> tuple[list[Reference], str]:
    """The references typed at the start of ``text`` (separated by spaces, commas or semicolons)
    and the rest of the text."""
    taken: list[Reference] = []
    pos = 0
    for ref in find_references(text, job_pattern=turn.ctx.job_pattern):
        if text[pos : ref.span[0]].strip(" \t\n,;"):
            break
        taken.append(ref)
        pos = ref.span[1]
    return taken, text[pos:].strip(" \t\n,;")


def _one_ref(turn: Turn, name: str, text: str) -> tuple[Reference, str]:
    if not text:
        raise _usage(name)
    refs, _ = _leading_refs(turn, text)
    if not refs:
        first = text.split(maxsplit=1)[0]
        raise CommandError(
            f'"{first}" is not a shipment reference I can read. {_reference_kinds(turn)}\n'
            f"Usage: {COMMANDS[name].usage}"
        )
    ref = refs[0]
    return ref, text[ref.span[1] :].strip(" \t\n,;")


def _shipments(turn: Turn, ref: Reference, *, single: bool = False) -> list[Shipment]:
    """The shipments a reference names; ``single`` refuses a container shared by several."""
    problem = changes.reference_problem(ref)
    if problem:
        raise CommandError(problem)
    shipments = repo.shipments_for_reference(session=turn.session, value=ref.value)
    if not shipments:
        raise CommandError(f"No shipment has {label(ref)} on file. Check it, or /add it.")
    if single and len(shipments) > 1:
        raise _shared(turn, ref, shipments)
    return shipments


def _shared(turn: Turn, ref: Reference, shipments: list[Shipment]) -> CommandError:
    choices = ", ".join(changes.own_references(turn.session, s)[0] for s in shipments)
    return CommandError(
        f"{label(ref)} is shared by {len(shipments)} shipments; this needs one of their own "
        f"references: {choices}."
    )


def _hold_kinds(turn: Turn, shipment: Shipment) -> list[str]:
    assert shipment.id is not None
    return [h.kind for h in repo.active_holds(session=turn.session, shipment_id=shipment.id)]


def _leading_term(text: str, parse: Callable[[str], str | None]) -> tuple[str | None, str]:
    """A stage or hold typed in up to four words at the start of ``text`` (longest wins), and the rest."""
    words = list(re.finditer(r"\S+", text))
    for n in range(min(4, len(words)), 0, -1):
        found = parse(" ".join(w.group(0) for w in words[:n]))
        if found:
            return found, text[words[n - 1].end() :].strip()
    return None, text


_FOR = re.compile(r"for\b\s*", re.IGNORECASE)
_OPTIN = re.compile(r"(?:opt(?:ed)?[\s-]?in|consent(?:ed)?)\b[\s,;:.-]*", re.IGNORECASE)


def _customer_clause(text: str) -> tuple[str | None, bool, str]:
    """ "for <phone or telegram id> [optin] rest" → (address, optin, rest)."""
    m = _FOR.match(text)
    if m is None:
        return None, False, text
    address, rest = changes.parse_contact(text[m.end() :])
    optin = _OPTIN.match(rest)
    if optin is not None:
        return address, True, rest[optin.end() :].strip()
    return address, False, rest


def _change(turn: Turn) -> Change:
    return Change(
        session=turn.session,
        author=turn.reader.contact.address,
        now=turn.reader.now,
        grace_seconds=turn.ctx.alert_grace_seconds,
    )


def _name(turn: Turn, shipment: Shipment) -> str:
    return f"#{shipment.id} ({', '.join(changes.own_references(turn.session, shipment))})"


def _alerts_line(change: Change) -> str:
    if not change.alerts_queued:
        return "No subscriber needs an alert."
    n = change.alerts_queued
    return f"{n} alert{'s' if n != 1 else ''} will go out in {change.grace_seconds} s; /undo stops them."


def _primary(refs: list[Reference]) -> str:
    """The reference a customer's subscription is kept under: their own, when there is one."""
    own = [r for r in refs if r.kind not in repo.SHARED_KINDS]
    return (own or refs)[0].value


def _customer_lines(link: changes.CustomerLink, address: str, optin: bool) -> list[str]:
    if not link.changed:
        return [f"Customer {address} was linked already; nothing changed for them."]
    if optin:
        line = f"Customer {address} linked; consent recorded and subscribed to alerts."
    else:
        line = f"Customer {address} linked (not subscribed: add optin when they have agreed to alerts)."
    lines = [line]
    if link.contact.opted_out:
        lines.append("Note: this customer sent STOP, so they get no alerts until they send START.")
    return lines


# --- shipment commands -----------------------------------------------------------------------


def cmd_add(turn: Turn, args: str) -> str:
    refs, rest = _leading_refs(turn, args)
    if not refs:
        if not args:
            raise _usage("add")
        raise CommandError(f"{_reference_kinds(turn)}\nUsage: {COMMANDS['add'].usage}")
    address, optin, note = _customer_clause(rest)
    change = _change(turn)
    shipment = changes.create_shipment(change, refs, note=note or None)
    assert shipment.id is not None
    lines = [f"Added shipment #{shipment.id}: {'; '.join(label(r) for r in refs)}. Stage: booked."]
    for ref in refs:
        if ref.kind in repo.SHARED_KINDS:
            others = [s.id for s in repo.shipments_for_reference(session=turn.session, value=ref.value)]
            others = [i for i in others if i != shipment.id]
            if others:
                ids = ", ".join(f"#{i}" for i in others)
                lines.append(f"{ref.value} is shared with {len(others)} other shipment(s): {ids}.")
    if address:
        link = changes.link_customer(change, shipment, address, optin=optin, reference=_primary(refs))
        lines.extend(_customer_lines(link, address, optin))
    if note:
        lines.append("Internal note saved.")
    lines.append(f"/undo within {change.grace_seconds} s removes it.")
    return "\n".join(lines)


def cmd_link(turn: Turn, args: str) -> str:
    refs, rest = _leading_refs(turn, args)
    address, optin, rest = _customer_clause(rest)
    if rest:
        raise CommandError(
            f'I could not read "{rest}". {_reference_kinds(turn)}\nUsage: {COMMANDS["link"].usage}'
        )
    if not refs or (len(refs) < 2 and address is None):
        raise _usage("link")
    for ref in refs:
        problem = changes.reference_problem(ref)
        if problem:
            raise CommandError(problem)
    # The shipment is the one named by a reference on file that names only one shipment.
    found = {ref.value: repo.shipments_for_reference(session=turn.session, value=ref.value) for ref in refs}
    targets = {shipments[0].id: shipments[0] for shipments in found.values() if len(shipments) == 1}
    if len(targets) > 1:
        ids = ", ".join(f"#{i}" for i in targets)
        raise CommandError(
            f"These references belong to different shipments ({ids}); I link within one shipment."
        )
    if not targets:
        on_file = next((r for r in refs if found[r.value]), None)
        if on_file is None:
            raise CommandError("None of these references is on file. /add the shipment first.")
        raise _shared(turn, on_file, found[on_file.value])
    shipment = next(iter(targets.values()))
    change = _change(turn)
    added = changes.link_references(change, shipment, refs)
    lines = []
    if added:
        lines.append(f"Linked to {_name(turn, shipment)}: {'; '.join(label(r) for r in added)}.")
    if address:
        link = changes.link_customer(change, shipment, address, optin=optin, reference=_primary(refs))
        lines.extend(_customer_lines(link, address, optin))
    if not added and not address:
        return f"Nothing to change: those references are all on {_name(turn, shipment)} already."
    return "\n".join(lines)


_ON = re.compile(r"^(?:on|by|via)\s+", re.IGNORECASE)


def cmd_eta(turn: Turn, args: str) -> str:
    ref, rest = _one_ref(turn, "eta", args)
    if not rest:
        raise _usage("eta")
    shipments = _shipments(turn, ref)
    now = turn.reader.now
    eta, rest = changes.parse_date(rest, now=now)
    port, transport = changes.parse_port(rest)
    transport = changes.checked_text("transport", _ON.sub("", transport))
    change = _change(turn)
    changed = [
        s
        for s in shipments
        if changes.set_fields(change, s, action="arrival", eta=eta, transport=transport or None, port=port)
    ]
    when = f"{format_when(eta, 'en', EAT, now=now)} ({format_when(eta, 'en', LONDON, now=now)})"
    parts = [when] + [p for p in (transport, port) if p]
    if not changed:
        return f"Nothing changed: {label(ref)} already has ETA {'; '.join(parts)}."
    names = ", ".join(_name(turn, s) for s in changed)
    return f"Arrival for {names}: ETA {'; '.join(parts)}."


def cmd_note(turn: Turn, args: str) -> str:
    ref, rest = _one_ref(turn, "note", args)
    public = False
    m = re.match(r"public\b[\s:,-]*", rest, re.IGNORECASE)
    if m is not None:
        public, rest = True, rest[m.end() :]
    if not rest.strip():
        raise _usage("note")
    shipments = _shipments(turn, ref)
    change = _change(turn)
    for shipment in shipments:
        changes.add_note(change, shipment, rest, public=public)
    names = ", ".join(_name(turn, s) for s in shipments)
    if public:
        return f"Public note added to {names}: customers linked to the shipment see it with its status."
    return f"Internal note added to {names} (staff only)."


def _stage_title(stage: str) -> str:
    return f"{stage} ({catalogue.text(f'stage.{stage}.title', 'en')})"


def cmd_update(turn: Turn, args: str) -> str:
    ref, rest = _one_ref(turn, "update", args)
    if not rest:
        raise _usage("update")
    stage, note = _leading_term(rest, parse_stage)
    if stage is None:
        word = rest.split(maxsplit=1)[0]
        raise CommandError(
            f'"{word}" is not a stage. Stages: {", ".join(STAGES)}.\nUsage: {COMMANDS["update"].usage}'
        )
    if stage == "released":
        return _release(turn, ref, number=None, note=note)
    shipments = _shipments(turn, ref, single=is_released(stage))
    change = _change(turn)
    lines = []
    changed = False
    for shipment in shipments:
        result = changes.set_stage(change, shipment, stage, note=note or None)
        if not result.changed:
            lines.append(f"{_name(turn, shipment)} is already {stage}; nothing changed.")
            continue
        changed = True
        lines.append(f"{_name(turn, shipment)}: {result.previous} → {_stage_title(stage)}.")
        if result.cleared:
            lines.append(f"Cleared holds: {', '.join(result.cleared)}.")
    if changed:
        lines.append(_alerts_line(change))
    return "\n".join(lines)


def _hold_choices() -> str:
    return f"Holds: {', '.join(HOLDS)}."


def cmd_hold(turn: Turn, args: str) -> str:
    ref, rest = _one_ref(turn, "hold", args)
    if not rest:
        raise _usage("hold")
    hold, note = _leading_term(rest, parse_hold)
    if hold is None:
        word = rest.split(maxsplit=1)[0]
        raise CommandError(f'"{word}" is not a hold. {_hold_choices()}\nUsage: {COMMANDS["hold"].usage}')
    shipments = _shipments(turn, ref)
    if len(shipments) > 1:
        # A container-level hold reaches every shipment in it that can still be held; when none can,
        # the first one's refusal explains why.
        shipments = [
            s for s in shipments if not is_released(s.stage) and hold not in _hold_kinds(turn, s)
        ] or shipments[:1]
    change = _change(turn)
    for shipment in shipments:
        changes.raise_hold(change, shipment, hold, note=note or None)
    title = catalogue.text(f"hold.{hold}.title", "en")
    names = ", ".join(_name(turn, s) for s in shipments)
    return f"On hold ({hold}: {title}): {names}.\n{_alerts_line(change)}"


def cmd_clear(turn: Turn, args: str) -> str:
    ref, rest = _one_ref(turn, "clear", args)
    if not rest:
        raise _usage("clear")
    m = re.match(r"all\b", rest, re.IGNORECASE)
    if m is not None:
        holds: list[str] | None = None
        note = rest[m.end() :].strip()
    else:
        hold, note = _leading_term(rest, parse_hold)
        if hold is None:
            word = rest.split(maxsplit=1)[0]
            raise CommandError(
                f'"{word}" is not a hold. {_hold_choices()} Or "all".\nUsage: {COMMANDS["clear"].usage}'
            )
        holds = [hold]
    shipments = _shipments(turn, ref)
    if len(shipments) > 1:
        # A container-level clearance reaches the shipments in it that have the hold (see cmd_hold).
        shipments = [
            s for s in shipments if any(holds is None or k in holds for k in _hold_kinds(turn, s))
        ] or shipments[:1]
    change = _change(turn)
    lines = []
    for shipment in shipments:
        cleared = changes.clear_holds(change, shipment, holds, note=note or None)
        remaining = _hold_kinds(turn, shipment)
        still = f" Still on hold: {', '.join(remaining)}." if remaining else " No holds remain."
        lines.append(f"Cleared {', '.join(cleared)} on {_name(turn, shipment)}.{still}")
    lines.append(_alerts_line(change))
    return "\n".join(lines)


_RELEASE_NUMBER = re.compile(r"(?P<number>\S*[0-9]\S*)(?:\s+|$)")


def cmd_release(turn: Turn, args: str) -> str:
    ref, rest = _one_ref(turn, "release", args)
    number = None
    m = _RELEASE_NUMBER.match(rest)
    if m is not None:
        number, rest = m["number"], rest[m.end() :]
    return _release(turn, ref, number=number, note=rest.strip())


def _release(turn: Turn, ref: Reference, *, number: str | None, note: str) -> str:
    """/release and /update … released: a Customs Release Message is per entry, so one shipment."""
    shipment = _shipments(turn, ref, single=True)[0]
    change = _change(turn)
    result = changes.set_stage(change, shipment, "released", note=note or None, release_number=number)
    if not result.changed:
        return f"{_name(turn, shipment)} is already released; nothing changed."
    if result.previous == "released":
        return f"{_name(turn, shipment)}: release message number set to {number}."
    lines = [f"Released {_name(turn, shipment)}: Customs Release Message issued (was {result.previous})."]
    if number:
        lines.append(f"Release message number: {number}.")
    if result.cleared:
        lines.append(f"Cleared the remaining holds: {', '.join(result.cleared)}.")
    else:
        lines.append("No holds were active.")
    lines.append(_alerts_line(change))
    return "\n".join(lines)


def cmd_undo(turn: Turn, args: str) -> str:
    grace = turn.ctx.alert_grace_seconds
    undone = changes.undo_last(
        session=turn.session, author=turn.reader.contact.address, now=turn.reader.now, grace_seconds=grace
    )
    if undone is None:
        return f"Nothing to undo: you made no change in the last {grace} s (their alerts may have gone out)."
    lines = []
    if undone.shipment_ids:
        ids = ", ".join(f"#{i}" for i in undone.shipment_ids)
        lines.append(f"Undone: {', '.join(undone.actions)} on {ids}; the previous state is back.")
    if undone.removed:
        lines.append(f"Removed shipment {', '.join(f'#{i}' for i in undone.removed)} (it was just added).")
    n = undone.cancelled_alerts
    lines.append(f"{n} pending alert{'s' if n != 1 else ''} cancelled." if n else "No alerts were waiting.")
    return "\n".join(lines)


# --- reading the store -----------------------------------------------------------------------


def cmd_find(turn: Turn, args: str) -> str:
    ref, _ = _one_ref(turn, "find", args)
    shipments = _shipments(turn, ref)
    parts = [_describe(turn, s) for s in shipments[:_FIND_MAX_SHIPMENTS]]
    if len(shipments) > 1:
        more = len(shipments) - _FIND_MAX_SHIPMENTS
        extra = f" (showing {_FIND_MAX_SHIPMENTS}; {more} more)" if more > 0 else ""
        parts.insert(0, f"{label(ref)} is shared by {len(shipments)} shipments{extra}.")
    return "\n\n".join(parts)


def _when(turn: Turn, moment: datetime) -> str:
    return format_when(moment, "en", turn.reader.tz, now=turn.reader.now)


def _describe(turn: Turn, shipment: Shipment) -> str:
    """Everything staff may need about one shipment, internal notes and alert failures included."""
    session = turn.session
    assert shipment.id is not None
    holds = repo.active_holds(session=session, shipment_id=shipment.id)
    head = f"Shipment #{shipment.id}: {_stage_title(shipment.stage)}"
    if holds:
        head += f"; ON HOLD: {', '.join(dict.fromkeys(h.kind for h in holds))}"
    lines = [head]
    refs = []
    for ref in repo.references_of(session=session, shipment_id=shipment.id):
        shared = repo.shipment_count_for_reference(session=session, reference_id=ref.id or 0)
        refs.append(
            reference_label(ref.kind, ref.value, "en") + (f" (shared by {shared})" if shared > 1 else "")
        )
    lines.append("References: " + "; ".join(refs))
    for hold in holds:
        note = f": {hold.note}" if hold.note else ""
        lines.append(f"Hold {hold.kind} since {_when(turn, hold.raised_at)} by {hold.raised_by}{note}")
    if shipment.transport or shipment.port or shipment.eta:
        eta = _when(turn, shipment.eta) if shipment.eta else "unknown"
        lines.append(f"Arrival: {shipment.transport or '?'} at {shipment.port or '?'}, ETA {eta}")
    if shipment.release_number:
        lines.append(f"Release message: {shipment.release_number}")
    if shipment.consignee or shipment.goods or shipment.packages is not None:
        lines.append(
            f"Consignee: {shipment.consignee or '-'}; goods: {shipment.goods or '-'}; "
            f"packages: {shipment.packages if shipment.packages is not None else '-'}"
        )
    customers = repo.linked_contacts(session=session, shipment_id=shipment.id)
    lines.append("Customers: " + (", ".join(c.address for c in customers) if customers else "none linked"))
    subs = repo.subscribers(session=session, shipment_id=shipment.id)
    lines.append(f"Subscribers: {len(subs)} (/subs {changes.own_references(session, shipment)[0]})")
    lines.append(f"Updated {_when(turn, shipment.updated_at)} by {shipment.updated_by or '-'}")
    events = repo.timeline(session=session, shipment_id=shipment.id, limit=_TIMELINE_LINES)
    lines.append("Timeline (newest first):")
    lines.extend(_event_line(turn, e) for e in events)
    rows = repo.outbox_for_shipment(session=session, shipment_id=shipment.id, limit=_OUTBOX_LINES)
    if rows:
        lines.append("Alerts (newest first):")
        lines.extend(_outbox_line(turn, r) for r in rows)
    return "\n".join(lines)


def _event_line(turn: Turn, event: TimelineEvent) -> str:
    text = f"- {_when(turn, event.at)} {event.author}: {event.action}"
    if event.detail and event.action != "note":
        text += f" {event.detail}"
    if event.note:
        text += f" — {'public' if event.public else 'internal'} note: {event.note}"
    if event.undone_at:
        text += " (undone)"
    return text


def _outbox_line(turn: Turn, row: Outbox) -> str:
    text = f"- {row.kind} to {row.recipient}: {row.status}"
    if row.status in ("pending", "retry", "held"):
        text += f", due {_when(turn, row.due_at)}"
    elif row.sent_at:
        text += f" {_when(turn, row.sent_at)}"
    if row.delivery_status:
        text += f" ({row.delivery_status})"
    if row.attempts:
        text += f", {row.attempts} attempt{'s' if row.attempts != 1 else ''}"
    if row.last_error:
        text += f" — {row.last_error}"
    return text


def cmd_subs(turn: Turn, args: str) -> str:
    ref, _ = _one_ref(turn, "subs", args)
    parts = []
    for shipment in _shipments(turn, ref):
        assert shipment.id is not None
        subs = repo.subscribers(session=turn.session, shipment_id=shipment.id)
        lines = [f"{_name(turn, shipment)}: {len(subs)} subscriber{'s' if len(subs) != 1 else ''}"]
        for sub, contact in subs:
            flags = [f"via {sub.reference}", "every stage" if sub.all_stages else "release and holds"]
            if contact.opted_out:
                flags.append("opted out (STOP)")
            lines.append(f"- {contact.address} ({', '.join(flags)}) since {_when(turn, sub.created_at)}")
        parts.append("\n".join(lines))
    return "\n\n".join(parts)


# --- staff, maintenance, broadcast -----------------------------------------------------------


def cmd_staff(turn: Turn, args: str) -> str:
    action, _, rest = args.partition(" ")
    action, rest = action.lower(), rest.strip()
    session = turn.session
    if action == "list":
        members = repo.list_staff(session=session)
        lines = [f"- {m.address}: {m.role} (added by {m.added_by or '-'})" for m in members]
        return "Staff:\n" + "\n".join(lines) if lines else "No staff yet."
    if action not in ("add", "remove") or not rest:
        raise _usage("staff")
    address, rest = changes.parse_contact(rest)
    if action == "remove":
        if rest:
            raise _usage("staff")
        if address == turn.reader.contact.address:
            raise CommandError("You cannot remove yourself; ask another admin.")
        if not repo.remove_staff(session=session, address=address):
            raise CommandError(f"{address} is not staff. /staff list shows who is.")
        return f"Removed {address} from staff."
    role = rest.lower() or "agent"
    if role not in ("admin", "agent"):
        raise CommandError(f'"{rest}" is not a role: admin or agent.\nUsage: {COMMANDS["staff"].usage}')
    repo.set_staff(
        session=session, address=address, role=role, added_by=turn.reader.contact.address, now=turn.reader.now
    )
    return f"{address} is now staff ({role})."


_WINDOW_SPEC = re.compile(r"[0-9]{4}-[0-9]{1,2}-[0-9]{1,2}(?![0-9])")


def _window_text(window: MaintenanceWindow, turn: Turn) -> str:
    now = turn.reader.now
    eat = format_window(window.starts_at, window.ends_at, "en", EAT, now=now)
    uk = format_window(window.starts_at, window.ends_at, "en", LONDON, now=now)
    return f"{eat} ({uk})"


def cmd_maintenance(turn: Turn, args: str) -> str:
    word, _, rest = args.partition(" ")
    if not args:
        raise _usage("maintenance")
    if word.lower() == "list":
        windows = repo.upcoming_windows(session=turn.session, now=turn.reader.now)
        if not windows:
            return "No iCMS maintenance window is announced."
        lines = [f"#{w.id}: {_window_text(w, turn)}, announced by {w.announced_by}" for w in windows]
        return "Announced iCMS maintenance:\n" + "\n".join(lines)
    if word.lower() == "cancel":
        return _cancel_window(turn, rest.strip())
    return _announce_window(turn, args)


def _announce_window(turn: Turn, text: str) -> str:
    now, session = turn.reader.now, turn.session
    try:
        spec = _WINDOW_SPEC.match(text)
        notice = parse_window_spec(text, now=now) if spec else parse_notice(text, now=now)
    except NoticeParseError as exc:
        raise CommandError(
            f"{exc}\nNothing was saved (the {exc.part} could not be read). Paste KRA's notice as "
            "published, or write /maintenance 2027-03-14 04:00-10:00 (EAT)."
        ) from None
    if notice.ends_at <= now:
        raise CommandError(
            f"That window ({format_window(notice.starts_at, notice.ends_at, 'en', EAT, now=now)}) has "
            "already ended; nothing was saved."
        )
    for window in repo.upcoming_windows(session=session, now=now):
        if window.starts_at == notice.starts_at and window.ends_at == notice.ends_at:
            raise CommandError(f"That window is saved already as #{window.id}: {_window_text(window, turn)}.")
    window = repo.add_window(
        session=session,
        starts_at=notice.starts_at,
        ends_at=notice.ends_at,
        source_text=text,
        author=turn.reader.contact.address,
        now=now,
    )
    told = alerts.queue_maintenance_phase(session=session, window=window, phase="announced", now=now)
    lines = [f"Saved iCMS maintenance window #{window.id}:", f"{_window_text(window, turn)}"]
    lines.extend(f"Check: {warning}" for warning in notice.warnings)
    lines.append(
        f"{told} notice{'s' if told != 1 else ''} queued now (subscribers whose shipments are not yet "
        "released, and staff); a reminder, the start and the end follow."
    )
    lines.append(f"Reply /maintenance cancel {window.id} if this is wrong.")
    return "\n".join(lines)


_WINDOW_ID = re.compile(r"#?[0-9]+")  # ASCII digits only ("²" is a digit to str.isdigit)


def _cancel_window(turn: Turn, arg: str) -> str:
    if not _WINDOW_ID.fullmatch(arg):
        raise _usage("maintenance")
    session, now = turn.session, turn.reader.now
    digits = arg.lstrip("#")
    window = repo.get_window(session=session, window_id=int(digits)) if len(digits) <= 9 else None  # 32 bits
    if window is None:
        raise CommandError(
            f"There is no maintenance window #{arg.lstrip('#')}. /maintenance list shows them."
        )
    if window.cancelled_at is not None:
        raise CommandError(f"Maintenance window #{window.id} was cancelled already.")
    window.cancelled_at = now
    keys = alerts.maintenance_event_keys(window)
    stopped = repo.cancel_pending(
        session=session, event_keys=keys, reason=f"window cancelled by {turn.reader.contact.address}"
    )
    told = [
        repo.get_contact(session=session, address=address) or Contact(address=address, created_at=now)
        for address in repo.recipients_told(session=session, event_keys=keys)
    ]
    sent = alerts.queue_maintenance_phase(
        session=session, window=window, phase="cancelled", now=now, recipients=told
    )
    return (
        f"Cancelled maintenance window #{window.id}: {_window_text(window, turn)}.\n"
        f"{stopped} notice{'s' if stopped != 1 else ''} not yet sent were stopped; "
        f"{sent} {'person' if sent == 1 else 'people'} already told will get a cancellation."
    )


def cmd_broadcast(turn: Turn, args: str) -> str:
    contact, now = turn.reader.contact, turn.reader.now
    word = args.lower()
    if not args:
        raise _usage("broadcast")
    if word in ("confirm", "cancel"):
        pending = contact.pending_payload if contact.pending_action == "broadcast" else None
        fresh = contact.pending_at is not None and now - contact.pending_at <= BROADCAST_CONFIRM_WITHIN
        if pending is not None:
            contact.pending_action = contact.pending_payload = contact.pending_at = None
        if pending is None:
            return "No broadcast is waiting. Send /broadcast <text> first."
        if word == "cancel":
            return "Broadcast cancelled; nothing was sent."
        if not fresh:
            return (
                "That broadcast waited more than 15 minutes, so it was dropped. Send /broadcast <text> again."
            )
        count = alerts.queue_broadcast(
            session=turn.session, text=pending, author=contact.address, now=now, broadcast_id=uuid.uuid4().hex
        )
        return f"Broadcast queued for {count} contact{'s' if count != 1 else ''}."
    if len(args) > BROADCAST_MAX_CHARS:
        raise CommandError(
            f"The broadcast is too long ({len(args)} characters; at most {BROADCAST_MAX_CHARS})."
        )
    count = sum(c.address != contact.address for c in repo.all_reachable_contacts(session=turn.session))
    contact.pending_action, contact.pending_payload, contact.pending_at = "broadcast", args, now
    return (
        f"This will go to {count} contact{'s' if count != 1 else ''} (everyone who has not opted out):"
        f"\n\n{args}\n\nSend /broadcast confirm within 15 minutes to send it, or /broadcast cancel."
    )


def cmd_help(turn: Turn, args: str) -> str:
    return help_text(grace_seconds=turn.ctx.alert_grace_seconds)


def help_text(*, grace_seconds: int) -> str:
    """The command list, generated from ``COMMANDS``."""
    lines = [
        f"Staff commands. <ref> is any shipment reference. Alerts wait {grace_seconds} s, so /undo "
        "can stop them."
    ]
    for command in COMMANDS.values():
        admins = " (admins only)" if command.admin_only else ""
        lines.append(f"{command.usage} — {command.description}{admins}")
    lines.append(f"Stages: {', '.join(STAGES)} (everyday words work too: landed, gate out, cleared…).")
    lines.append(f"Holds: {', '.join(HOLDS)} (also: under control, port health, to amend…).")
    return "\n".join(lines)


COMMANDS: dict[str, Command] = {
    "add": Command(
        cmd_add,
        "/add <ref> [<ref>…] [for <phone or telegram id> [optin]] [note]",
        "a new shipment; a container, master AWB or B/L may be shared with others, an entry, IDF or "
        "house reference may not; optin records consent and subscribes the customer",
    ),
    "link": Command(
        cmd_link,
        "/link <ref> <ref>… [for <phone or telegram id> [optin]]",
        "add references (or a customer) to the shipment one of them names",
    ),
    "eta": Command(
        cmd_eta,
        "/eta <ref> <date> [vessel/voyage or flight] [at Mombasa|JKIA|ICD Embakasi]",
        "set the arrival: 2026-12-02, 02/12/2026 or 2 Dec, time optional (EAT)",
    ),
    "note": Command(cmd_note, "/note <ref> [public] <text>", "add a note; internal unless public"),
    "update": Command(
        cmd_update, "/update <ref> <stage> [note]", "set the stage (skips and corrections allowed)"
    ),
    "hold": Command(
        cmd_hold,
        "/hold <ref> <inspection|kebs|docs|agency|amend> [note]",
        "raise a hold; subscribers are told",
    ),
    "clear": Command(cmd_clear, "/clear <ref> <hold|all> [note]", "clear a hold, or all of them"),
    "release": Command(
        cmd_release,
        "/release <ref> [release message number] [note]",
        "Customs Release Message issued: clears the remaining holds and alerts subscribers",
    ),
    "undo": Command(cmd_undo, "/undo", "revert your last change made within the alert grace period"),
    "find": Command(
        cmd_find, "/find <ref>", "everything on file: timeline, internal notes, customers, alerts"
    ),
    "subs": Command(cmd_subs, "/subs <ref>", "who gets alerts for a shipment"),
    "staff": Command(
        cmd_staff,
        "/staff add|remove|list [<address> admin|agent]",
        "manage staff (address: whatsapp:+E164, telegram:ID or console:NAME)",
        admin_only=True,
    ),
    "maintenance": Command(
        cmd_maintenance,
        "/maintenance <KRA notice> | <2027-03-14 04:00-10:00> | list | cancel <id>",
        "announce an iCMS maintenance window (EAT) to subscribers and staff",
    ),
    "broadcast": Command(
        cmd_broadcast,
        "/broadcast <text> | confirm | cancel",
        "message every contact who has not opted out, after a confirmation",
        admin_only=True,
    ),
    "help": Command(cmd_help, "/help", "this list"),
}
