"""The customer side of the conversation: keywords, status questions, help.

Keywords (English and Kiswahili) live in ``KEYWORDS``; ``help`` is built from the catalogue.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

from sqlmodel import Session

from handlers import alerts, catalogue, privacy
from handlers.context import Context
from handlers.references import Reference, find_references
from handlers.stages import is_released
from handlers.status import Reader, answer_reference, icms_answer, maintenance_note
from handlers.types import Button, Inbound, Reply
from storage import repo

_WORD = re.compile(r"[a-zà-ÿ']+", re.IGNORECASE)

# Words that mark a message as Kiswahili (short, common, unlikely in English).
_SWAHILI = frozenset(
    "habari hujambo jambo mzigo wangu yangu kontena iko wapi lini gani nini tafadhali asante "
    "sana hali je bado imefika imetoka ushuru forodha malipo naomba nataka kuhusu mimi yetu "
    "shehena sasa leo kesho mambo vipi shikamoo karibu nisaidie msaada".split()
)
_ENGLISH = frozenset(
    "where is my the container status please hello hi when what has it been cleared released "
    "shipment cargo check can you update".split()
)

_AGENT = re.compile(r"\b(agent|human|wakala|person|mtu)\b", re.IGNORECASE)
_ICMS_QUESTION = re.compile(r"\bicms\b", re.IGNORECASE)


@dataclass(frozen=True)
class Turn:
    """One customer message in context."""

    inbound: Inbound
    reader: Reader
    session: Session
    ctx: Context
    inbound_key: str
    known: repo.Arrival  # lookups within the hourly limit, the next iCMS maintenance window
    lookups: list[str] = field(default_factory=list)  # references looked up, for the caller to count


def detect_language(text: str) -> str | None:
    words = [w.lower() for w in _WORD.findall(text)]
    sw = sum(w in _SWAHILI for w in words)
    en = sum(w in _ENGLISH for w in words)
    if sw > en:
        return "sw"
    if en > sw:
        return "en"
    return None


def _t(turn: Turn, key: str, **values: object) -> str:
    return catalogue.text(key, turn.reader.lang, **values)


def _refs(turn: Turn, text: str) -> list[Reference]:
    return find_references(text, job_pattern=turn.ctx.job_pattern)


def _shipment_ids(turn: Turn, ref: Reference) -> list[int]:
    return [s.id for s in repo.shipments_for_reference(session=turn.session, value=ref.value) if s.id]


# --- keywords --------------------------------------------------------------------------------


def kw_help(turn: Turn, _rest: str) -> list[Reply]:
    return [Reply(_t(turn, "help.text", contact=turn.ctx.business_contact, kra=turn.ctx.kra_contact))]


def kw_alert(turn: Turn, rest: str) -> list[Reply]:
    refs = [r for r in _refs(turn, rest) if r.kind != "kra_pin"]
    if not refs:
        return [Reply(_t(turn, "subscribe.need_ref"))]
    all_stages = bool(re.search(r"\b(all|zote)\b", rest, re.IGNORECASE))
    contact = turn.reader.contact
    assert contact.id is not None
    lines = []
    for ref in refs:
        if not ref.valid:
            lines.append(answer_reference(session=turn.session, ref=ref, reader=turn.reader, ctx=turn.ctx))
            continue
        shipments = repo.shipments_for_reference(session=turn.session, value=ref.value)
        if not shipments:
            lines.append(answer_reference(session=turn.session, ref=ref, reader=turn.reader, ctx=turn.ctx))
            continue
        if len(shipments) > 1:
            mine = repo.linked_shipment_ids(
                session=turn.session, contact_id=contact.id, among=[s.id for s in shipments if s.id]
            )
            if len(mine) != 1:
                lines.append(_t(turn, "subscribe.shared", ref=ref.value))
                continue
            shipments = [s for s in shipments if s.id in mine]
        shipment = shipments[0]
        assert shipment.id is not None
        repo.subscribe(
            session=turn.session,
            contact_id=contact.id,
            shipment_id=shipment.id,
            reference=ref.value,
            all_stages=all_stages,
            now=turn.reader.now,
        )
        if is_released(shipment.stage):
            lines.append(_t(turn, "subscribe.already_released", ref=ref.value))
        else:
            lines.append(_t(turn, "subscribe.done_all" if all_stages else "subscribe.done", ref=ref.value))
    if contact.opted_out:
        repo.start_contact(session=turn.session, contact=contact)
        lines.append(_t(turn, "subscribe.opted_in_again"))
    return [Reply("\n".join(lines))]


def kw_unsubscribe(turn: Turn, rest: str) -> list[Reply]:
    refs = [r for r in _refs(turn, rest) if r.valid]
    if not refs:
        return [Reply(_t(turn, "unsubscribe.need_ref"))]
    contact = turn.reader.contact
    assert contact.id is not None
    lines = []
    for ref in refs:
        count = repo.unsubscribe(
            session=turn.session, contact_id=contact.id, shipment_ids=_shipment_ids(turn, ref)
        )
        lines.append(_t(turn, "unsubscribe.done" if count else "unsubscribe.none", ref=ref.value))
    return [Reply("\n".join(lines))]


def kw_stop(turn: Turn, _rest: str) -> list[Reply]:
    repo.stop_contact(session=turn.session, contact=turn.reader.contact, now=turn.reader.now)
    return [Reply(_t(turn, "stop.done"))]


def kw_start(turn: Turn, _rest: str) -> list[Reply]:
    count = repo.start_contact(session=turn.session, contact=turn.reader.contact)
    return [Reply(_t(turn, "start.done", count=count))]


def kw_lang(turn: Turn, rest: str) -> list[Reply]:
    word = rest.strip().lower()
    lang = (
        "sw"
        if word.startswith(("sw", "kisw", "swa"))
        else "en"
        if word.startswith(("en", "kiing", "eng"))
        else None
    )
    if lang is None:
        return [Reply(_t(turn, "lang.choose"))]
    contact = turn.reader.contact
    contact.language, contact.language_chosen = lang, True
    return [Reply(catalogue.text("lang.set", lang))]


def kw_agent(turn: Turn, _rest: str) -> list[Reply]:
    alerts.queue_agent_request(
        session=turn.session,
        contact=turn.reader.contact,
        text=turn.inbound.text,
        now=turn.reader.now,
        inbound_key=turn.inbound_key,
        media=turn.inbound.media_urls,
    )
    key = "agent.media" if turn.inbound.media_urls else "agent.ack"
    return [Reply(_t(turn, key, hours=turn.ctx.office_hours, contact=turn.ctx.business_contact))]


def kw_icms(turn: Turn, _rest: str) -> list[Reply]:
    return [Reply(icms_answer(session=turn.session, reader=turn.reader))]


def kw_delete(turn: Turn, _rest: str) -> list[Reply]:
    privacy.ask_delete(contact=turn.reader.contact, now=turn.reader.now)
    return [Reply(_t(turn, "delete.confirm"))]


Keyword = Callable[[Turn, str], list[Reply]]

# The first word(s) of a message that make it a keyword rather than a question.
KEYWORDS: dict[str, Keyword] = {
    "help": kw_help,
    "menu": kw_help,
    "msaada": kw_help,
    "start": kw_start,
    "anza": kw_start,
    "alert": kw_alert,
    "subscribe": kw_alert,
    "nijulishe": kw_alert,
    "unsubscribe": kw_unsubscribe,
    "stop": kw_stop,
    "acha": kw_stop,
    "lang": kw_lang,
    "lugha": kw_lang,
    "language": kw_lang,
    "icms": kw_icms,
    "delete my data": kw_delete,
    "futa data yangu": kw_delete,
}

# Telegram's command menu sends "/help", "/alert …": the same keywords.
_SLASH_ALIASES = {
    "/start": "help",
    "/help": "help",
    "/menu": "help",
    "/alert": "alert",
    "/stop": "stop",
    "/lang": "lang",
    "/agent": "agent",
    "/unsubscribe": "unsubscribe",
    "/icms": "icms",
}


def customer_keyword(text: str) -> tuple[str, str] | None:
    """Which keyword a message starts with, and the rest of it."""
    stripped = text.strip()
    lowered = stripped.lower()
    first, _, rest = stripped.partition(" ")
    if first.lower() in _SLASH_ALIASES:
        return _SLASH_ALIASES[first.lower()], rest
    for phrase in ("delete my data", "futa data yangu"):
        if lowered.startswith(phrase):
            return phrase, stripped[len(phrase) :]
    word = first.lower().rstrip(".!,:")
    if word in KEYWORDS:
        return word, rest
    return None


def handle_customer(turn: Turn) -> list[Reply]:
    text = turn.inbound.text
    confirmed = privacy.handle_pending(turn)
    if confirmed is not None:
        return confirmed
    if turn.inbound.media_urls:
        return kw_agent(turn, "")
    keyword = customer_keyword(text)
    if keyword is not None:
        name, rest = keyword
        if name == "agent":
            return kw_agent(turn, rest)
        return KEYWORDS[name](turn, rest)
    if _AGENT.search(text):
        return kw_agent(turn, "")
    refs = _refs(turn, text)
    if not refs:
        if _ICMS_QUESTION.search(text):
            return kw_icms(turn, "")
        return [Reply(_t(turn, "help.short", contact=turn.ctx.business_contact))]
    return status_replies(turn, refs)


def status_replies(turn: Turn, refs: list[Reference]) -> list[Reply]:
    reader, session = turn.reader, turn.session
    used = turn.known.lookups_last_hour
    lookups = [r for r in refs if r.kind != "kra_pin" and r.valid]
    if lookups and used + len(lookups) > turn.ctx.lookup_limit_per_hour:
        return [Reply(_t(turn, "rate.limited", contact=turn.ctx.business_contact))]
    parts, buttons = [], []
    # Only reads until the end: nothing needs flushing before each query (the commit writes it all).
    with session.no_autoflush:
        for ref in refs:
            shipments = None
            if ref.kind != "kra_pin" and ref.valid:
                shipments = repo.shipment_rows_for_reference(
                    session=session, value=ref.value, contact_id=reader.contact.id
                )
                if any(not is_released(s.stage) for s in shipments):
                    buttons.append(Button(_t(turn, "button.alert"), f"ALERT {ref.value}"))
            parts.append(
                answer_reference(
                    session=session, ref=ref, reader=turn.reader, ctx=turn.ctx, shipments=shipments
                )
            )
        note = maintenance_note(turn.known.next_window, reader)
    if note:
        parts.append(note)
    turn.lookups.extend(ref.value for ref in lookups)
    buttons = buttons[:3]
    return [Reply("\n\n".join(parts), buttons=tuple(buttons))]
