"""``cargobot import FILE.csv``: bring shipments in from a spreadsheet, through the same changes as
the staff commands (so the same timeline events and alerts).

Columns (header names are case-insensitive; only ``references`` is required): references (space,
comma or semicolon separated), stage, holds (semicolon-separated; ``none`` clears them), eta,
transport (vessel/voyage or flight), port, consignee, goods, packages, customer_phone, optin, note.
An empty cell changes nothing.

Every row is validated first; a row with errors is reported by its spreadsheet row number (the
header is row 1) and skipped, the valid rows are imported in batches, one transaction each, with a
savepoint per row so a row refused by the store (an entry already on another shipment) skips only
itself. Re-running a file changes nothing: a row finds its shipment by an entry, IDF or job
reference, or failing that by exactly the same set of references, and only differences are applied.
"""

from __future__ import annotations

import csv
import itertools
import os
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, TextIO

from sqlalchemy import Engine
from sqlmodel import Session

from handlers import changes
from handlers.changes import Change, ChangeError
from handlers.references import Reference, find_references
from handlers.stages import HOLDS, STAGES, is_released, parse_hold, parse_stage
from storage import repo
from storage.db import write_session
from storage.models import Shipment

_ALIASES = {
    "reference": "references",
    "refs": "references",
    "hold": "holds",
    "vessel": "transport",
    "flight": "transport",
    "vessel_or_flight": "transport",
    "phone": "customer_phone",
    "customer": "customer_phone",
    "opt_in": "optin",
    "notes": "note",
}
BATCH_ROWS = 200
_MAX_NOTE_CHARS = 2000
_YES = {"yes", "y", "true", "1", "x", "optin", "opt-in", "ndio"}
_NO = {"no", "n", "false", "0", ""}
_NO_HOLDS = {"none", "-", "no", "cleared"}

Source = str | os.PathLike[str] | TextIO


@dataclass(frozen=True)
class RowError:
    row: int  # spreadsheet row number; the header is row 1
    message: str


@dataclass
class ImportReport:
    rows: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    alerts: int = 0
    errors: list[RowError] = field(default_factory=list)

    def summary(self) -> str:
        lines = [
            f"{self.rows} rows: {self.created} created, {self.updated} updated, {self.unchanged} unchanged, "
            f"{len(self.errors)} skipped with errors; {self.alerts} alerts queued."
        ]
        lines.extend(f"row {e.row}: {e.message}" for e in self.errors)
        return "\n".join(lines)


@dataclass(frozen=True)
class _Row:
    """One row, read and checked; None means "leave as it is"."""

    number: int
    refs: tuple[Reference, ...]
    stage: str | None = None
    holds: frozenset[str] | None = None
    eta: datetime | None = None
    transport: str | None = None
    port: str | None = None
    consignee: str | None = None
    goods: str | None = None
    packages: int | None = None
    customer: str | None = None
    optin: bool = False
    note: str | None = None


# --- reading the file ------------------------------------------------------------------------


def count_rows(path: str | os.PathLike[str]) -> int:
    """How many data rows the file has (for a progress bar's total)."""
    with _open(path) as handle:
        _, records = _records(handle)
        return sum(1 for _ in records)


@contextmanager
def _open(source: Source) -> Iterator[TextIO]:
    """Open a path (UTF-8, with or without Excel's BOM), or use an open file as it is."""
    if isinstance(source, str | os.PathLike):
        with Path(source).open(encoding="utf-8-sig", newline="") as handle:
            yield handle
    else:
        yield source


def _records(handle: TextIO) -> tuple[list[str], Iterator[tuple[int, dict[str, str]]]]:
    """The normalised header and (row number, cells) for every row that is not blank.

    The delimiter is a comma, a semicolon (Excel in many locales) or a tab: whichever the header
    line uses most.
    """
    first = handle.readline()
    delimiter = max((",", ";", "\t"), key=first.count)
    reader = csv.reader(itertools.chain([first], handle), delimiter=delimiter)
    header = next(reader, [])
    names = [_ALIASES.get(n, n) for n in (re.sub(r"[\s-]+", "_", h.strip().lower()) for h in header)]

    def rows() -> Iterator[tuple[int, dict[str, str]]]:
        for number, cells in enumerate(reader, start=2):
            if any(cell.strip() for cell in cells):
                yield number, {name: cell.strip() for name, cell in zip(names, cells, strict=False)}

    return names, rows()


def _header_problem(names: list[str]) -> str | None:
    if "references" not in names:
        return f"the header has no references column (columns: {', '.join(COLUMNS)})"
    unknown = [n for n in names if n and n not in COLUMNS]
    if unknown:
        return f"unknown column {', '.join(unknown)} (columns: {', '.join(COLUMNS)})"
    return None


# --- validating a row ------------------------------------------------------------------------


def _read_row(
    number: int, cells: dict[str, str], *, now: datetime, job_pattern: re.Pattern[str] | None
) -> _Row:
    """Check every cell of a row; raises ChangeError naming the column of the first problem."""
    values: dict[str, Any] = {}
    for column, read in _READERS.items():
        cell = cells.get(column, "")
        if cell or column == "references":
            try:
                values[_FIELDS.get(column, column)] = read(cell, now, job_pattern)
            except ChangeError as exc:
                raise ChangeError(f"{column}: {exc}") from None
    if values.get("holds") and values.get("stage") and is_released(values["stage"]):
        raise ChangeError("holds: a released shipment cannot be on hold")
    if values.get("optin") and "customer" not in values:
        raise ChangeError("optin: there is no customer_phone to record the consent for")
    return _Row(number=number, **values)


def _references(cell: str, _now: datetime, job_pattern: re.Pattern[str] | None) -> tuple[Reference, ...]:
    refs = find_references(cell, job_pattern=job_pattern)
    if not refs:
        raise ChangeError("none I can read (for example MSKU9070323, 24MBAIM400448715)")
    leftover = cell
    for ref in sorted(refs, key=lambda r: r.span[0], reverse=True):
        leftover = leftover[: ref.span[0]] + " " + leftover[ref.span[1] :]
    if leftover.strip(" \t,;"):
        raise ChangeError(f'"{leftover.strip(" ,;")}" is not a reference I can read')
    for ref in refs:
        problem = changes.reference_problem(ref)
        if problem:
            raise ChangeError(problem)
    return tuple(refs)


def _stage(cell: str, *_: object) -> str:
    stage = parse_stage(cell)
    if stage is None:
        raise ChangeError(f'"{cell}" is not a stage ({", ".join(STAGES)})')
    return stage


def _holds(cell: str, *_: object) -> frozenset[str]:
    if cell.lower() in _NO_HOLDS:
        return frozenset()
    holds = set()
    for word in filter(None, (w.strip() for w in re.split(r"[;,]", cell))):
        hold = parse_hold(word)
        if hold is None:
            raise ChangeError(f'"{word}" is not a hold ({", ".join(HOLDS)}, or none)')
        holds.add(hold)
    return frozenset(holds)


def _eta(cell: str, now: datetime, _job: object) -> datetime:
    eta, rest = changes.parse_date(cell, now=now)
    if rest:
        raise ChangeError(f'I could not read "{rest}" after the date')
    return eta


def _port(cell: str, *_: object) -> str:
    port, rest = changes.parse_port(cell)
    if port is None or rest:
        raise ChangeError(f'"{cell}" is not one of {", ".join(changes.PORTS)}')
    return port


def _text(column: str) -> Callable[..., str]:
    return lambda cell, *_: changes.checked_text(column, cell)


def _packages(cell: str, *_: object) -> int:
    if not _COUNT.fullmatch(cell):  # ASCII digits only ("²" is a digit to str.isdigit)
        raise ChangeError(f'"{cell}" is not a whole number of packages')
    return int(cell)


_COUNT = re.compile(r"[0-9]{1,9}")  # within the column's 32 bits


def _customer(cell: str, *_: object) -> str:
    address, rest = changes.parse_contact(cell)
    if rest:
        raise ChangeError(f'I could not read "{rest}" after the number')
    return address


def _optin(cell: str, *_: object) -> bool:
    if cell.lower() not in _YES | _NO:
        raise ChangeError(f'"{cell}" should be yes or no')
    return cell.lower() in _YES


def _note(cell: str, *_: object) -> str:
    if len(cell) > _MAX_NOTE_CHARS:
        raise ChangeError(f"too long ({len(cell)} characters; at most {_MAX_NOTE_CHARS})")
    return cell


# How each column is read, in the order its errors are reported; the key in _Row where it differs.
_READERS: dict[str, Callable[..., Any]] = {
    "references": _references,
    "stage": _stage,
    "holds": _holds,
    "eta": _eta,
    "transport": _text("transport"),
    "port": _port,
    "consignee": _text("consignee"),
    "goods": _text("goods"),
    "packages": _packages,
    "customer_phone": _customer,
    "optin": _optin,
    "note": _note,
}
_FIELDS = {"references": "refs", "customer_phone": "customer"}
COLUMNS = tuple(_READERS)


# --- applying a row --------------------------------------------------------------------------


def _find(session: Session, row: _Row) -> Shipment | None:
    """The row's shipment: by its entry, IDF or job reference, else by exactly its references."""
    found: dict[int, Shipment] = {}
    for ref in row.refs:
        if ref.kind not in repo.SHARED_KINDS:
            for shipment in repo.shipments_for_reference(session=session, value=ref.value):
                found[shipment.id or 0] = shipment
    if len(found) > 1:
        ids = ", ".join(f"#{i}" for i in sorted(found))
        raise ChangeError(f"references: they belong to different shipments ({ids})")
    if found:
        return next(iter(found.values()))
    return repo.shipment_with_exact_references(session=session, values=[r.value for r in row.refs])


def _apply(change: Change, row: _Row) -> str:
    """Make the shipment match the row; returns "created", "updated" or "unchanged"."""
    session = change.session
    shipment = _find(session, row)
    created = shipment is None
    if shipment is None:
        shipment = changes.create_shipment(change, row.refs, stage=row.stage or "booked")
    changed = bool(changes.link_references(change, shipment, row.refs)) if not created else False
    changed |= changes.set_fields(
        change, shipment, action="details", consignee=row.consignee, goods=row.goods, packages=row.packages
    )
    changed |= changes.set_fields(
        change, shipment, action="arrival", eta=row.eta, transport=row.transport, port=row.port
    )
    releasing = row.stage is not None and is_released(row.stage) and not is_released(shipment.stage)
    if row.stage is not None and not releasing:  # before the holds: a hold needs an unreleased stage
        changed |= changes.set_stage(change, shipment, row.stage).changed
    if row.holds is not None and not releasing:  # a release clears the holds itself
        assert shipment.id is not None
        active = {h.kind for h in repo.active_holds(session=session, shipment_id=shipment.id)}
        if active - row.holds:
            changes.clear_holds(change, shipment, sorted(active - row.holds))
            changed = True
        for hold in sorted(row.holds - active):
            changes.raise_hold(change, shipment, hold)
            changed = True
    if releasing:
        assert row.stage is not None
        changed |= changes.set_stage(change, shipment, row.stage).changed
    if row.customer is not None:
        own = [r for r in row.refs if r.kind not in repo.SHARED_KINDS] or list(row.refs)
        link = changes.link_customer(change, shipment, row.customer, optin=row.optin, reference=own[0].value)
        changed |= link.changed
    if row.note is not None:
        assert shipment.id is not None
        if not repo.has_note(session=session, shipment_id=shipment.id, note=row.note):
            changes.add_note(change, shipment, row.note, public=False)
            changed = True
    return "created" if created else "updated" if changed else "unchanged"


def import_csv(
    engine: Engine,
    path_or_file: Source,
    *,
    author: str,
    now: datetime,
    grace_seconds: int,
    progress: Callable[[int], object] | None = None,
    job_pattern: re.Pattern[str] | None = None,
) -> ImportReport:
    """Import a CSV file of shipments; see the module docstring for the columns and rules.

    ``progress`` is called with the number of rows just handled (an increment, as tqdm's
    ``update`` takes), after each batch commits.
    """
    report = ImportReport()
    with _open(path_or_file) as handle:
        names, records = _records(handle)
        problem = _header_problem(names)
        if problem:
            report.errors.append(RowError(1, problem))
            return report
        rows: list[_Row | RowError] = []
        for number, cells in records:
            try:
                rows.append(_read_row(number, cells, now=now, job_pattern=job_pattern))
            except ChangeError as exc:
                rows.append(RowError(number, str(exc)))
    report.rows = len(rows)
    for start in range(0, len(rows), BATCH_ROWS):
        batch = rows[start : start + BATCH_ROWS]
        with write_session(engine) as session:
            for row in batch:
                if isinstance(row, RowError):
                    report.errors.append(row)
                    continue
                change = Change(session=session, author=author, now=now, grace_seconds=grace_seconds)
                try:
                    with session.begin_nested():
                        outcome = _apply(change, row)
                except ChangeError as exc:
                    report.errors.append(RowError(row.number, str(exc)))
                    continue
                report.created += outcome == "created"
                report.updated += outcome == "updated"
                report.unchanged += outcome == "unchanged"
                report.alerts += change.alerts_queued
        if progress is not None:
            progress(len(batch))
    report.errors.sort(key=lambda e: e.row)
    return report
