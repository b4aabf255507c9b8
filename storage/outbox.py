"""Claiming and settling outbox rows: what makes several dispatchers on one database safe.

A claim is one ``UPDATE … WHERE id IN (SELECT … LIMIT n) RETURNING id``: on PostgreSQL the inner
select takes ``FOR UPDATE SKIP LOCKED`` so concurrent workers never claim the same row; on SQLite
the transaction starts with ``BEGIN IMMEDIATE``, so claims are serialised. A claim is a lease: a
row whose worker died is claimed again once ``lease_until`` passes. Every settle is a
compare-and-set on ``claimed_by``, so a worker that lost its lease cannot overwrite the new owner.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta

from sqlalchemy import (
    Engine,
    Integer,
    String,
    and_,
    bindparam,
    case,
    delete,
    exists,
    func,
    insert,
    or_,
    select,
    update,
)

from handlers.types import Button, Reply
from storage.db import read_session, write_connection, write_session
from storage.models import Contact, DeliveryReport, Outbox
from storage.prepared import OnConnection, Prepared

DUE_STATUSES = ("pending", "retry")
# Delivery reports only move forward.
_DELIVERY_ORDER = {"queued": 0, "sent": 1, "delivered": 2, "read": 3, "undelivered": 4, "failed": 4}
_OUTBOX_T = Outbox.__table__  # type: ignore[attr-defined]
_DELIVERY_RANK = case(_DELIVERY_ORDER, value=func.coalesce(_OUTBOX_T.c.delivery_status, "queued"), else_=0)
# A status callback that moves a row's delivery status forward, in one statement.
_MOVE_DELIVERY = (
    update(_OUTBOX_T)
    .where(
        _OUTBOX_T.c.provider_id == bindparam("report_id"),
        _DELIVERY_RANK < bindparam("rank", type_=Integer),
    )
    .values(
        delivery_status=bindparam("reported"),  # bound names must not be the table's column names
        last_error=func.coalesce(bindparam("report_error", type_=String), _OUTBOX_T.c.last_error),
    )
)
_HAS_PROVIDER_ID = select(exists().where(_OUTBOX_T.c.provider_id == bindparam("provider_id")))


def claim_due(
    *, engine: Engine, worker: str, now: datetime, lease_seconds: int, limit: int, channels: Sequence[str]
) -> list[Outbox]:
    """Claim up to ``limit`` due rows (or rows whose lease ran out) for ``worker``.

    Only rows for ``channels`` are claimed: a worker without WhatsApp credentials leaves WhatsApp
    alerts to one that has them.
    """
    due = and_(
        or_(
            and_(Outbox.status.in_(DUE_STATUSES), Outbox.due_at <= now),  # type: ignore[attr-defined]
            and_(Outbox.status == "sending", Outbox.lease_until < now),  # type: ignore[arg-type, operator]
        ),
        or_(*(Outbox.recipient.startswith(f"{name}:") for name in channels)),  # type: ignore[attr-defined]
    )
    with write_session(engine) as session:
        inner = select(Outbox.id).where(due).order_by(Outbox.due_at, Outbox.id).limit(limit)  # type: ignore[arg-type]
        if engine.dialect.name == "postgresql":
            inner = inner.with_for_update(skip_locked=True)
        stmt = (
            update(Outbox)
            .where(Outbox.id.in_(inner.scalar_subquery()))  # type: ignore[union-attr]
            .values(
                status="sending",
                claimed_by=worker,
                lease_until=now + timedelta(seconds=lease_seconds),
                attempts=Outbox.attempts + 1,
            )
            .returning(Outbox.id)
        )
        ids = list(session.execute(stmt).scalars().all())
        if not ids:
            return []
        rows = session.execute(select(Outbox).where(Outbox.id.in_(ids)).order_by(Outbox.due_at, Outbox.id))  # type: ignore[union-attr]
        return list(rows.scalars().all())


def contacts_for(*, engine: Engine, addresses: Sequence[str]) -> dict[str, Contact]:
    """The contacts at ``addresses`` (a plain read: it never waits for SQLite's write lock)."""
    with read_session(engine) as session:
        rows = session.execute(select(Contact).where(Contact.address.in_(list(addresses))))  # type: ignore[attr-defined]
        return {c.address: c for c in rows.scalars().all()}


def settle(*, engine: Engine, row_id: int, worker: str, **values: object) -> bool:
    """Record a send's outcome if ``worker`` still holds the row; False when it lost the lease."""
    return settle_many(engine=engine, worker=worker, outcomes=[(row_id, values)])[0]


def settle_many(
    *, engine: Engine, worker: str, outcomes: Sequence[tuple[int, Mapping[str, object]]]
) -> list[bool]:
    """``settle`` for several rows in one transaction (group commit); one flag per outcome.

    Still a compare-and-set per row: the rows ``worker`` holds are read (and on PostgreSQL locked)
    first, and only those are updated, so one lost lease does not affect the others. Outcomes with
    the same fields go as one executemany.
    """
    if not outcomes:
        return []
    table = Outbox.__table__  # type: ignore[attr-defined]
    ids = [row_id for row_id, _ in outcomes]
    held_by_worker = and_(table.c.claimed_by == worker, table.c.status == "sending")
    with write_connection(engine) as connection:
        held_query = select(table.c.id).where(table.c.id.in_(ids), held_by_worker)
        if engine.dialect.name == "postgresql":
            held_query = held_query.with_for_update()
        held = set(connection.execute(held_query).scalars())
        by_fields: dict[tuple[str, ...], list[dict[str, object]]] = {}
        for row_id, values in outcomes:
            if row_id in held:
                fields = tuple(sorted(values))
                by_fields.setdefault(fields, []).append(
                    {"row_id": row_id, **{f"v_{k}": values[k] for k in fields}}
                )
        for fields, params in by_fields.items():
            stmt = (
                update(table)
                .where(table.c.id == bindparam("row_id"), held_by_worker)
                .values(
                    claimed_by=None,
                    lease_until=None,
                    **{name: bindparam(f"v_{name}", type_=table.c[name].type) for name in fields},
                )
            )
            connection.execute(stmt, params)
    return [row_id in held for row_id in ids]


def expire_stale(*, engine: Engine, now: datetime, max_age: timedelta) -> int:
    """Give up alerts older than ``max_age`` or past their own expiry, held ones included."""
    waiting = ("pending", "retry", "held")
    with write_session(engine) as session:
        too_old = session.execute(
            update(Outbox)
            .where(Outbox.status.in_(waiting), Outbox.created_at < now - max_age)  # type: ignore[attr-defined]
            .values(status="expired", last_error="gave up: older than ALERT_MAX_AGE_HOURS")
        ).rowcount  # type: ignore[attr-defined]
        moment_passed = session.execute(
            update(Outbox)
            .where(Outbox.status.in_(waiting), Outbox.expires_at < now)  # type: ignore[attr-defined, operator]
            .values(status="expired", last_error="dropped: its moment passed before it could be sent")
        ).rowcount  # type: ignore[attr-defined]
        return int(too_old) + int(moment_passed)


OUTSIDE_WINDOW_CODE = "63016"
# A report whose message id never shows up (not ours, or its send was lost) is dropped after this.
_REPORT_SHELF_LIFE = timedelta(days=1)


def apply_delivery_report(
    *,
    engine: Engine,
    provider_id: str,
    status: str,
    error_code: str | None,
    now: datetime,
    has_template: Callable[[str | None], bool],
) -> bool:
    """Apply a provider's status callback to its outbox row; False when no row has that id yet.

    Statuses only move forward. ``undelivered``/``failed`` with 63016 (WhatsApp's 24-hour window
    was closed) sends the alert again as the approved template, or holds it until the customer
    writes when ``has_template(row.template)`` is false; not once the message was delivered or
    read (a report out of order), which would send it twice.
    """
    failed = status in ("failed", "undelivered")
    if not (failed and error_code == OUTSIDE_WINDOW_CODE):  # most reports: one UPDATE, no ORM
        error = (f"{status} (error {error_code})" if error_code else status) if failed else None
        rank = _DELIVERY_ORDER.get(status)  # None: a status that moves nothing (accepted, sending …)
        with write_connection(engine) as connection:
            params = {"report_id": provider_id, "rank": rank, "reported": status, "report_error": error}
            if rank is not None and connection.execute(_MOVE_DELIVERY, params).rowcount:
                return True
            return bool(connection.execute(_HAS_PROVIDER_ID, {"provider_id": provider_id}).scalar())
    with write_session(engine) as session:
        row = session.execute(select(Outbox).where(Outbox.provider_id == provider_id)).scalar_one_or_none()
        if row is None:
            return False
        current = _DELIVERY_ORDER.get(row.delivery_status or "queued", 0)
        if row.delivery_status in ("delivered", "read"):  # it reached the customer: the report is stale
            return True
        if _DELIVERY_ORDER.get(status, -1) > current:
            row.delivery_status = status
            row.last_error = f"{status} (error {error_code})" if error_code else status
        if row.status == "sent":
            row.provider_id = row.delivery_status = None
            if has_template(row.template) and not row.force_template:
                row.status, row.due_at, row.force_template = "pending", now, True
            else:
                row.status = "held"
                row.last_error = (
                    "held: WhatsApp 24-hour window closed (63016 in a status callback); "
                    "sent when the customer next writes"
                )
        return True


def keep_delivery_report(
    *, engine: Engine, provider_id: str, status: str, error_code: str | None, now: datetime
) -> None:
    """Keep a report whose message id is not recorded yet (it may still be committing)."""
    with write_session(engine) as session:
        # Fields come from the provider as sent: cut them to the columns rather than fail the callback.
        session.add(
            DeliveryReport(
                provider_id=provider_id[:80],
                status=status[:20],
                error_code=error_code[:20] if error_code else None,
                received_at=now,
            )
        )


def apply_kept_reports(*, engine: Engine, now: datetime, has_template: Callable[[str | None], bool]) -> int:
    """Apply kept reports whose message id has since been recorded; drop stale ones."""
    with write_session(engine) as session:
        reports = list(session.execute(select(DeliveryReport).order_by(DeliveryReport.id)).scalars().all())
    applied = 0
    for report in reports:
        done = apply_delivery_report(
            engine=engine,
            provider_id=report.provider_id,
            status=report.status,
            error_code=report.error_code,
            now=now,
            has_template=has_template,
        )
        if done or now - report.received_at > _REPORT_SHELF_LIFE:
            with write_session(engine) as session:
                session.execute(delete(DeliveryReport).where(DeliveryReport.id == report.id))
            applied += done
    return applied


def add_claimed_replies(
    connection: OnConnection,
    *,
    event_prefix: str,
    address: str,
    replies: Sequence[Reply],
    now: datetime,
    worker: str,
    lease: timedelta,
) -> list[tuple[int, Reply]]:
    """Record replies we are about to send ourselves as outbox rows already claimed by ``worker``;
    returns (row id, reply) for each that is not blank, in order.

    Written in the same transaction as the inbound message, so a reply is never lost: if the
    process dies before settling a row, or its send is not confirmed, the dispatcher sends it,
    inline buttons included.
    """
    claimed = []
    for index, reply in enumerate(reply for reply in replies if reply.text.strip()):
        row = Outbox(
            event_key=f"{event_prefix}:{index}",
            recipient=address,
            kind="reply",
            text=reply.text,
            buttons=_buttons_json(reply.buttons),
            status="sending",
            due_at=now,
            attempts=1,
            claimed_by=worker,
            lease_until=now + lease,
            created_at=now,
        )
        ((row_id,),) = _ADD_ROW.rows(connection, _columns_of(row))
        claimed.append((row_id, reply))
    return claimed


def _buttons_json(buttons: Sequence[Button]) -> str | None:
    if not buttons:
        return None
    return json.dumps([{"label": b.label, "data": b.data} for b in buttons], ensure_ascii=False)


def buttons_of(row: Outbox) -> tuple[Button, ...]:
    """The inline buttons stored with ``row`` (``Outbox.buttons``), none when it has none."""
    if not row.buttons:
        return ()
    return tuple(Button(label=item["label"], data=item["data"]) for item in json.loads(row.buttons))


def add_replies(
    connection: OnConnection,
    *,
    event_prefix: str,
    address: str,
    texts: Sequence[str],
    first_index: int,
    now: datetime,
) -> None:
    """Replies for the dispatcher to send: WhatsApp pieces that did not fit in the webhook's answer,
    their buttons already written into the text (``button_hint``), so none are stored."""
    for index, text in enumerate(texts, start=first_index):
        row = Outbox(
            event_key=f"{event_prefix}:{index}",
            recipient=address,
            kind="reply",
            text=text,
            status="pending",
            due_at=now,
            created_at=now,
        )
        _ADD_ROW.rows(connection, _columns_of(row))


# An outbox row written in an answer's write turn, which may run on the driver (``Prepared``):
# every column given, as the model's defaults make it (``_columns_of``).
_ROW_COLUMNS = tuple(column.key for column in _OUTBOX_T.c if not column.primary_key)
_ADD_ROW = Prepared(
    insert(_OUTBOX_T).values({key: bindparam(key) for key in _ROW_COLUMNS}).returning(_OUTBOX_T.c.id)
)


def _columns_of(row: Outbox) -> dict[str, object]:
    return {key: getattr(row, key) for key in _ROW_COLUMNS}
