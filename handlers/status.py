"""The plain-language status answer for one reference a customer sent.

Only reads: shipments, holds and windows come from the repository's read path as database rows,
whose attributes are named as in ``storage.models`` (the annotations name those models).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlmodel import Session

from handlers import catalogue
from handlers.context import Context
from handlers.labels import reference_label
from handlers.references import Reference
from handlers.stages import is_released
from handlers.timefmt import format_relative, format_when, format_window
from storage import repo
from storage.models import Contact, MaintenanceWindow
from storage.repo import ShipmentRow, WindowTimes

_BEFORE_ARRIVAL = ("booked", "in_transit")


@dataclass(frozen=True)
class Reader:
    """Who is reading: their contact, language and time zone."""

    contact: Contact
    lang: str
    tz: ZoneInfo
    now: datetime
    is_staff: bool = False


def _t(key: str, reader: Reader, **values: object) -> str:
    return catalogue.text(key, reader.lang, **values)


def answer_reference(
    *,
    session: Session,
    ref: Reference,
    reader: Reader,
    ctx: Context,
    shipments: list[ShipmentRow] | None = None,
) -> str:
    """Render the answer for one recognised reference (``shipments``: its shipments, if looked up)."""
    label = reference_label(ref.kind, ref.value, reader.lang, ref.carrier)
    if ref.kind == "kra_pin":
        return _t("status.kra_pin", reader, value=ref.value)
    if not ref.valid:
        text = _t("status.invalid", reader, label=label)
        if ref.suggestion:
            text += " " + _t("status.suggest", reader, suggestion=ref.suggestion)
        return text
    if shipments is None:
        shipments = repo.shipment_rows_for_reference(
            session=session, value=ref.value, contact_id=reader.contact.id
        )
    if not shipments:
        return _t("status.not_found", reader, label=label, contact=ctx.business_contact)
    if len(shipments) > 1 and not reader.is_staff:
        mine = [s for s in shipments if s.linked]
        if len(mine) == 1:
            shipments = mine
        else:
            return _shared_answer(session=session, label=label, shipments=shipments, reader=reader)
    return _shipment_answer(session=session, label=label, ref=ref, shipment=shipments[0], reader=reader)


def _shipment_answer(
    *, session: Session, label: str, ref: Reference, shipment: ShipmentRow, reader: Reader
) -> str:
    """Stage, meaning, next step, the customer's action (the assessed and paid actions carry the
    payment-safety sentence), holds, arrival, private details for linked contacts, freshness."""
    assert shipment.id is not None
    holds = repo.active_hold_rows(session=session, shipment_id=shipment.id) if shipment.on_hold else []
    stage = shipment.stage
    headline = f"{label} — {_t(f'stage.{stage}.title', reader)}"
    if holds:
        titles = ", ".join(dict.fromkeys(_t(f"hold.{h.kind}.title", reader) for h in holds))
        headline += f" — {_t('status.on_hold', reader, holds=titles)}"
    lines = [headline + "."]
    lines.append(f"{_t('status.meaning_label', reader)}: {_t(f'stage.{stage}.meaning', reader)}")
    lines.append(f"{_t('status.next_label', reader)}: {_t(f'stage.{stage}.next', reader)}")
    lines.append(f"{_t('status.action_label', reader)}: {_t(f'stage.{stage}.action', reader)}")
    lines.extend(_hold_lines((h.kind for h in holds), reader))
    if stage in _BEFORE_ARRIVAL and (shipment.transport or shipment.eta or shipment.port):
        lines.append(_arrival_line(shipment, reader))
    if shipment.release_number and is_released(stage):
        lines.append(_t("status.release_number", reader, number=shipment.release_number))
    if reader.is_staff or shipment.linked:
        lines.extend(_private_lines(session=session, shipment=shipment, reader=reader))
    lines.append(
        _t(
            "status.updated",
            reader,
            relative=format_relative(shipment.updated_at, reader.now, reader.lang),
            when=format_when(shipment.updated_at, reader.lang, reader.tz, now=reader.now),
        )
    )
    if not is_released(stage) and not shipment.subscribed:
        lines.append(_t("status.subscribe_hint", reader, ref=ref.value))
    return "\n".join(lines)


def _hold_lines(kinds: Iterable[str], reader: Reader) -> list[str]:
    lines = []
    for kind in dict.fromkeys(kinds):
        lines.append(
            _t(
                "status.hold_line",
                reader,
                title=_t(f"hold.{kind}.title", reader),
                meaning=_t(f"hold.{kind}.meaning", reader),
                action=_t(f"hold.{kind}.action", reader),
            )
        )
    return lines


def _arrival_line(shipment: ShipmentRow, reader: Reader) -> str:
    unknown = _t("status.unknown", reader)
    eta = format_when(shipment.eta, reader.lang, reader.tz, now=reader.now) if shipment.eta else unknown
    return _t(
        "status.arrival",
        reader,
        transport=shipment.transport or unknown,
        port=shipment.port or unknown,
        eta=eta,
    )


def _private_lines(*, session: Session, shipment: ShipmentRow, reader: Reader) -> list[str]:
    """Details only the customers linked to the shipment (and staff) may read."""
    assert shipment.id is not None
    lines = []
    if shipment.consignee or shipment.goods or shipment.packages:
        lines.append(
            _t(
                "status.details",
                reader,
                consignee=shipment.consignee or "-",
                goods=shipment.goods or "-",
                packages=shipment.packages if shipment.packages is not None else "-",
            )
        )
    note = repo.recent_public_note(session=session, shipment_id=shipment.id, limit=20)
    if note:
        lines.append(_t("status.public_note", reader, note=note))
    return lines


def _shared_answer(*, session: Session, label: str, shipments: list[ShipmentRow], reader: Reader) -> str:
    """A container or master reference carrying several customers' goods: only what they share."""
    lines = [_t("status.shared", reader, label=label, count=len(shipments))]
    first = shipments[0]
    same = all((s.transport, s.port, s.eta) == (first.transport, first.port, first.eta) for s in shipments)
    if same and (first.transport or first.eta or first.port):
        lines.append(_arrival_line(first, reader))
    common: set[str] | None = None
    for shipment in shipments:
        assert shipment.id is not None
        holds = repo.active_hold_rows(session=session, shipment_id=shipment.id) if shipment.on_hold else []
        kinds = {h.kind for h in holds}
        common = kinds if common is None else common & kinds
    lines.extend(_hold_lines(sorted(common or ()), reader))
    lines.append(_t("status.shared_ask", reader))
    return "\n".join(lines)


def maintenance_note(window: WindowTimes | None, reader: Reader) -> str | None:
    """While an iCMS window is on, or starts within 24 hours, every status reply says so.

    ``window``: the first window not over yet (``repo.Arrival.next_window``); any later one starts
    later still, so it cannot be on, or sooner, when this one is not."""
    if window is None:
        return None
    if window.starts_at <= reader.now:
        return _t("status.maintenance_now", reader, until=_until(window, reader))
    if window.starts_at - reader.now <= timedelta(hours=24):
        return _t("status.maintenance_soon", reader, window=_window(window, reader))
    return None


def icms_answer(*, session: Session, reader: Reader) -> str:
    windows = repo.upcoming_window_rows(session=session, now=reader.now)
    if not windows:
        return _t("icms.none", reader)
    window = windows[0]
    if window.starts_at <= reader.now:
        return _t("icms.down", reader, until=_until(window, reader))
    return _t("icms.next", reader, window=_window(window, reader))


def _until(window: WindowTimes | MaintenanceWindow, reader: Reader) -> str:
    return format_when(window.ends_at, reader.lang, reader.tz, now=reader.now)


def _window(window: WindowTimes | MaintenanceWindow, reader: Reader) -> str:
    return format_window(window.starts_at, window.ends_at, reader.lang, reader.tz)
