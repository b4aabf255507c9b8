"""Latency of answering a status question at 1,000 and at 1,000,000 shipments (SQLite, in process).

Each question goes through the same path as the console channel: ``handlers.router.receive``
inside ``storage.db.write_session`` (store the inbound message, contact, rate-limit count and
record, the status answer, commit). Both databases are built here with realistic groupage data:
each shipment has 1-3 references (a container or master air waybill shared by about five
shipments, its own customs entry, sometimes a master B/L), random stages, some active and cleared
holds, 1-3 timeline events; a few contacts are linked to shipments and subscribed. The built files
are cached under ``bench/results/`` keyed by size (``--rebuild`` builds them again); each run works
on a fresh copy, so lookups and inbound messages recorded by one run never weigh on the next.

The questions (containers typed several ways, entries, a few air waybills, the sender's own
entry, valid references we have no record of, some in Kiswahili) come from a handful of fictional
senders; the two sizes are measured in alternating chunks so drift on the machine hits both alike.
Each reply is checked (found / not found as expected, never rate-limited), and the SQL of one
question per kind is run through EXPLAIN QUERY PLAN on the large database: a full scan of a
growing table is reported. The last line printed is a JSON object (``p50_ms`` and ``p99_ms`` are at
the large size; ``scale_ratio_1m_vs_1k`` is p50 large / p50 small; goal at most 1.5).

    python bench/conversation.py [--small N] [--large N] [--questions N] [--warmup N] [--senders N]
                                 [--seed S] [--rebuild] [--cache-dir DIR] [--explain]
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import sqlite3
import sys
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, column, create_engine, event, insert, table, text
from sqlalchemy.sql.expression import TableClause
from sqlmodel import SQLModel
from stdnum import iso6346

from handlers import catalogue
from handlers.context import Context
from handlers.references import AIRLINES, CONTAINER_OWNERS
from handlers.router import receive
from handlers.stages import HOLDS, STAGES
from handlers.types import Inbound
from storage.db import dispose, init_db, make_engine, write_session

BUILD_VERSION = 3  # bump when the generated data changes shape: cached files are then rebuilt
DEFAULT_CACHE = Path(__file__).resolve().parent / "results"
BATCH = 20_000  # shipments generated and inserted per executemany round
CHUNK = 50  # questions per size before switching to the other size

STAFF = ("console:ops-lucy", "console:ops-tom", "console:ops-wanjiku")
OWNERS = sorted(CONTAINER_OWNERS)
UNKNOWN_OWNERS = ("TCNU", "BMOU", "TRHU", "GESU", "FCIU")  # never used by the generated data
AIR_PREFIXES = sorted(p for p in AIRLINES if not p.startswith("0"))
OFFICES = ("MBA", "NBO", "JKA")  # entries: Mombasa, Nairobi (ICD), JKIA
UNKNOWN_OFFICE = "KSM"  # Kisumu: no generated entry uses it
STAGE_WEIGHTS = (8, 20, 10, 12, 10, 8, 10, 7, 15)  # booked .. delivered
RELEASED = frozenset(STAGES[STAGES.index("released") :])
VESSELS = ("MAERSK KENSINGTON", "MSC AURORA", "CMA CGM TAGE", "HAPAG BERLIN", "ONE HARMONY", "OOCL NAIROBI")
SEA_PORTS = ("Mombasa", "Mombasa", "Mombasa", "ICD Embakasi")
FLIGHTS = ("KQ 101", "EK 719", "BA 065", "QR 1341", "TK 6421", "ET 3720")
GOODS = (
    "Household goods",
    "Used car parts",
    "Laptops",
    "Shoes",
    "Solar panels",
    "Textiles",
    "Kitchen appliances",
    "Cosmetics",
    "Electronics",
    "Medicines",
    "Furniture",
    "Books",
)
CONSIGNEE_FIRST = ("Amani", "Baraka", "Chebet", "Dalia", "Eliud", "Faith", "Gitau", "Halima", "Imani", "Juma")
CONSIGNEE_LAST = ("Wekesa", "Otieno", "Kiprono", "Njeri", "Mwangi", "Achieng", "Kamau", "Yusuf", "Chege")

# Question shapes. {c} container as typed, {e} entry, {a} air waybill "176-12345675".
EN_CONTAINER = ("Where is {c}?", "{c}", "Hi, any update on container {c} please", "status of {c} pls")
EN_ENTRY = ("{e}", "hello, my entry {e} - has it been released?", "Status {e}", "where is my cargo {e}")
EN_AWB = ("awb {a}", "Hello, any news on AWB {a}?")
SW_CONTAINER = ("Habari, kontena {c} iko wapi?", "Tafadhali nisaidie, kontena {c} imefika?")
SW_ENTRY = ("Mzigo wangu {e} umefika?", "Habari, tafadhali hali ya mzigo {e}?")
# Share of each question kind (the rest of the mix is container questions).
MIX = (("entry", 0.28), ("awb", 0.06), ("own", 0.10), ("unknown", 0.10), ("kiswahili", 0.06))


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# --- building the databases --------------------------------------------------------------------


def container_number(owner: str, serial: int) -> str:
    body = f"{owner}{serial:06d}"
    return body + iso6346.calc_check_digit(body)


def awb_number(prefix: str, serial: int) -> str:
    return f"{prefix}{serial:07d}{serial % 7}"


def sender_addresses(count: int) -> list[str]:
    """Fictional senders: UK drama range (+44 7700 900950-) and an invented Kenyan block."""
    return [
        f"whatsapp:+447700900{950 + k // 2:03d}" if k % 2 == 0 else f"whatsapp:+254700000{950 + k // 2:03d}"
        for k in range(count)
    ]


def other_addresses(count: int) -> list[str]:
    pool = [f"whatsapp:+447700900{j:03d}" for j in range(900)] + [
        f"whatsapp:+254700000{j:03d}" for j in range(900)
    ]
    return pool[: min(count, len(pool))]


@dataclass
class Counters:
    shipment: int = 0
    reference: int = 0
    group: int = 0
    sea_group: int = 0
    air_group: int = 0
    bl: int = 0


class Generator:
    """Deterministic rows for shipments 1..n, in groupage consignments of 1-9 shipments."""

    def __init__(self, n: int, seed: int, now: datetime) -> None:
        self.n, self.rng, self.now = n, random.Random(seed * 1_000_003 + n), now.replace(tzinfo=None)
        self.ids = Counters()

    def batches(self) -> Iterator[dict[str, list[dict[str, Any]]]]:
        rows: dict[str, list[dict[str, Any]]] = defaultdict(list)
        while self.ids.shipment < self.n:
            self._consignment(rows)
            if len(rows["shipment"]) >= BATCH:
                yield rows
                rows = defaultdict(list)
        if rows:
            yield rows

    def _reference(self, rows: dict[str, list[dict[str, Any]]], kind: str, value: str) -> int:
        self.ids.reference += 1
        rows["reference"].append({"id": self.ids.reference, "kind": kind, "value": value})
        return self.ids.reference

    def _consignment(self, rows: dict[str, list[dict[str, Any]]]) -> None:
        rng, now = self.rng, self.now
        size = min(rng.randint(1, 9), self.n - self.ids.shipment)
        self.ids.group += 1
        shared: list[int] = []
        if rng.random() < 0.8:  # sea freight: a container (and sometimes a master B/L) shared
            g = self.ids.sea_group
            self.ids.sea_group += 1
            owner = OWNERS[g % len(OWNERS)]
            # per owner, a bijection on 0..999999 (379721 is prime to 10**6), offset by owner
            serial = ((g // len(OWNERS)) * 379_721 + 104_729 * (1 + g % len(OWNERS))) % 1_000_000
            shared.append(self._reference(rows, "container", container_number(owner, serial)))
            if rng.random() < 0.3:
                self.ids.bl += 1
                shared.append(self._reference(rows, "bl", f"MEDULO{self.ids.bl:06d}"))
            transport = f"{rng.choice(VESSELS)} {rng.randint(100, 999)}{rng.choice('NSEW')}"
            port = rng.choice(SEA_PORTS)
        else:  # air freight: a master air waybill shared
            g = self.ids.air_group
            self.ids.air_group += 1
            serial = (g * 7_654_321 + 1_234_567) % 10_000_000
            shared.append(self._reference(rows, "awb", awb_number(rng.choice(AIR_PREFIXES), serial)))
            transport, port = rng.choice(FLIGHTS), "JKIA"
        eta = stamp(now + timedelta(days=rng.uniform(-25, 25)))
        for _ in range(size):
            self.ids.shipment += 1
            self._shipment(rows, self.ids.shipment, shared, transport, port, eta)

    def _shipment(
        self,
        rows: dict[str, list[dict[str, Any]]],
        sid: int,
        shared: list[int],
        transport: str,
        port: str,
        eta: str,
    ) -> None:
        rng, now = self.rng, self.now
        stage = rng.choices(STAGES, STAGE_WEIGHTS)[0]
        created = now - timedelta(days=rng.uniform(1, 120))
        updated = created + (now - created) * rng.random()
        rows["shipment"].append(
            {
                "id": sid,
                "stage": stage,
                "consignee": f"{rng.choice(CONSIGNEE_FIRST)} {rng.choice(CONSIGNEE_LAST)} (fictional)",
                "goods": rng.choice(GOODS),
                "packages": rng.randint(1, 200),
                "transport": transport,
                "port": port,
                "eta": eta,
                "release_number": f"CRM-2026-{sid:07d}" if stage in RELEASED else None,
                "created_at": stamp(created),
                "updated_at": stamp(updated),
                "updated_by": rng.choice(STAFF),
                "personal_data_purged": False,
            }
        )
        links = list(shared)
        if rng.random() < 0.9:  # its own customs entry (unique)
            entry = f"{24 + sid % 3}{OFFICES[sid % len(OFFICES)]}IM4{sid:08d}"
            links.append(self._reference(rows, "entry", entry))
        rows["shipmentreference"].extend({"shipment_id": sid, "reference_id": r} for r in links)
        if stage not in RELEASED and rng.random() < 0.12:
            for kind in rng.sample(HOLDS, rng.choice((1, 1, 2))):
                rows["hold"].append(self._hold(sid, kind, updated, None))
        if rng.random() < 0.06:
            rows["hold"].append(self._hold(sid, rng.choice(HOLDS), created, updated))
        steps = rng.randint(1, 3)
        for k in range(steps):
            at = created + (updated - created) * (k + 1) / steps
            note = "Documents received, thank you." if k == steps - 1 and rng.random() < 0.05 else None
            rows["timelineevent"].append(
                {
                    "shipment_id": sid,
                    "at": stamp(at),
                    "author": rng.choice(STAFF),
                    "action": "note" if note else "stage",
                    "detail": None if note else STAGES[max(0, STAGES.index(stage) - (steps - 1 - k))],
                    "note": note,
                    "public": bool(note),
                    "change_id": uuid.UUID(int=rng.getrandbits(128)).hex,
                    "undo": None,
                    "undone_at": None,
                }
            )

    @staticmethod
    def _hold(sid: int, kind: str, raised: datetime, cleared: datetime | None) -> dict[str, Any]:
        return {
            "shipment_id": sid,
            "kind": kind,
            "note": None,
            "raised_at": stamp(raised),
            "raised_by": STAFF[0],
            "cleared_at": stamp(cleared) if cleared else None,
            "cleared_by": STAFF[0] if cleared else None,
        }

    def people(self, senders: list[str]) -> dict[str, list[dict[str, Any]]]:
        """Staff, the benchmark's senders (each linked to 8 shipments, subscribed to 3), a few
        other contacts linked and subscribed, and past messages with their lookups (older than the
        hourly window)."""
        rng, now, n = self.rng, self.now, self.n
        rows: dict[str, list[dict[str, Any]]] = defaultdict(list)
        rows["staff"] = [
            {
                "address": a,
                "role": "admin" if i == 0 else "agent",
                "added_by": "bench",
                "added_at": stamp(now),
            }
            for i, a in enumerate(STAFF)
        ]
        others = other_addresses(max(10, n // 500))
        for cid, address in enumerate(senders + others, start=1):
            rows["contact"].append(
                {
                    "id": cid,
                    "address": address,
                    "display_name": None,
                    "language": "en",
                    "language_chosen": False,
                    "opted_out": False,
                    "opted_out_at": None,
                    "last_inbound_at": stamp(now - timedelta(days=rng.uniform(1, 60))),
                    "pending_action": None,
                    "pending_payload": None,
                    "pending_at": None,
                    "created_at": stamp(now - timedelta(days=rng.uniform(60, 365))),
                }
            )
            linked = rng.sample(range(1, n + 1), min(n, 8 if address in senders else rng.randint(1, 3)))
            for k, sid in enumerate(linked):
                rows["shipmentcontact"].append(
                    {"shipment_id": sid, "contact_id": cid, "consent_at": stamp(now)}
                )
                if k < 3 and (address in senders or rng.random() < 0.6):
                    rows["subscription"].append(
                        {
                            "contact_id": cid,
                            "shipment_id": sid,
                            "reference": "",
                            "all_stages": False,
                            "active": True,
                            "stopped": False,
                            "created_at": stamp(now - timedelta(days=rng.uniform(1, 30))),
                        }
                    )
            for _ in range(300 if address in senders else 2):
                at = now - timedelta(days=rng.uniform(1, 30))
                rows["inboundmessage"].append(
                    {
                        "provider_key": None,
                        "address": address,
                        "text": "where is my container?",
                        "received_at": stamp(at),
                        "answered_at": stamp(at),
                        "reply": "",
                        "lookups": 1,
                    }
                )
        return rows


def stamp(value: datetime) -> str:
    """A naive UTC datetime as ``storage.models.UTCDateTime`` stores it on SQLite (checked below)."""
    return value.isoformat(" ", "microseconds")


def bare_table(name: str) -> TableClause:
    """The table's columns without their types: Core ``insert()`` executemany then hands the rows
    to the driver as they are, skipping the per-value bind processors (the datetimes come already
    formatted by ``stamp``), which would otherwise be most of the build time."""
    return table(name, *(column(c.name) for c in SQLModel.metadata.tables[name].columns))


def check_stamp() -> None:
    """``stamp`` must write exactly what the model's type writes, or the reads would differ."""
    sample = datetime(2026, 11, 23, 9, 5, 7, 1234, tzinfo=UTC)
    engine = create_engine("sqlite://")
    inbound = SQLModel.metadata.tables["inboundmessage"]
    inbound.create(engine)
    with engine.begin() as conn:
        conn.execute(insert(inbound), {"address": "check", "text": "", "received_at": sample})
        stored = conn.exec_driver_sql("SELECT received_at FROM inboundmessage").scalar_one()
    engine.dispose()
    if stamp(sample.replace(tzinfo=None)) != stored:
        raise RuntimeError(f"stamp() writes {stamp(sample.replace(tzinfo=None))!r}, the model {stored!r}")


def _fast_build_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    for pragma in (
        "journal_mode=OFF",
        "synchronous=OFF",
        "locking_mode=EXCLUSIVE",
        "temp_store=MEMORY",
        "cache_size=-512000",
        "foreign_keys=OFF",
    ):
        cursor.execute(f"PRAGMA {pragma}")
    cursor.close()


def build_database(path: Path, n: int, *, seed: int, senders: list[str]) -> float:
    """Create the schema through the migrations, then bulk-insert ``n`` shipments. Seconds taken."""
    check_stamp()
    started = time.perf_counter()
    tmp = path.with_suffix(".building")
    tmp.unlink(missing_ok=True)
    url = f"sqlite:///{tmp}"
    engine = make_engine(url)
    init_db(engine)
    dispose(engine)
    fast = create_engine(url)
    event.listen(fast, "connect", _fast_build_pragmas)
    tables = {name: bare_table(name) for name in SQLModel.metadata.tables}
    gen = Generator(n, seed, datetime.now(UTC))
    with fast.begin() as conn:
        for rows in gen.batches():
            for name in ("shipment", "reference", "shipmentreference", "hold", "timelineevent"):
                if rows[name]:
                    conn.execute(insert(tables[name]), rows[name])
            log(
                f"  {path.name}: {gen.ids.shipment:,}/{n:,} shipments ({time.perf_counter() - started:.0f} s)"
            )
        for name, batch in gen.people(senders).items():
            conn.execute(insert(tables[name]), batch)
    with fast.connect() as conn:
        conn.exec_driver_sql("PRAGMA journal_mode=WAL")
    fast.dispose()
    tmp.replace(path)
    return time.perf_counter() - started


def cached_database(
    cache: Path, n: int, *, seed: int, senders: list[str], rebuild: bool
) -> tuple[Path, float]:
    """The built database for ``n`` shipments (built now if missing), upgraded to the newest schema."""
    path = cache / f"conversation_{n}_s{seed}_p{len(senders)}_v{BUILD_VERSION}.db"
    seconds = 0.0
    if rebuild or not path.exists():
        log(f"building {n:,} shipments into {path}")
        seconds = build_database(path, n, seed=seed, senders=senders)
        log(f"  built in {seconds:.1f} s, {path.stat().st_size / 1e6:.0f} MB")
    engine = make_engine(f"sqlite:///{path}")
    init_db(engine)  # a schema migration added since the file was built (an index) is applied here
    with engine.connect() as conn:
        conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    dispose(engine)
    return path, seconds


def working_copy(path: Path) -> Path:
    run = path.with_suffix(".run.db")
    for suffix in ("", "-wal", "-shm"):
        Path(f"{run}{suffix}").unlink(missing_ok=True)
    shutil.copyfile(path, run)
    return run


def remove_copy(run: Path) -> None:
    for suffix in ("", "-wal", "-shm"):
        Path(f"{run}{suffix}").unlink(missing_ok=True)


# --- questions ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Question:
    kind: str  # container, entry, awb, own, unknown, kiswahili
    sender: str
    text: str
    expect_found: bool


def typed_container(value: str, rng: random.Random) -> str:
    style = rng.random()
    if style < 0.5:
        return value
    if style < 0.8:
        return f"{value[:4]} {value[4:10]}-{value[10]}"
    return f"{value[:4]} {value[4:7]} {value[7:10]} {value[10]}"


def sample_values(engine: Engine, kind: str, count: int, rng: random.Random) -> list[str]:
    with engine.connect() as conn:
        values = [
            row[0]
            for row in conn.execute(
                text("SELECT value FROM reference WHERE kind = :kind ORDER BY random() LIMIT :count"),
                {"kind": kind, "count": count},
            )
        ]
    rng.shuffle(values)
    return values


def own_entries(engine: Engine, senders: list[str]) -> dict[str, list[str]]:
    """Each sender's entries: references of shipments staff linked them to."""
    found: dict[str, list[str]] = {s: [] for s in senders}
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT c.address, r.value FROM contact c"
                " JOIN shipmentcontact sc ON sc.contact_id = c.id"
                " JOIN shipmentreference sr ON sr.shipment_id = sc.shipment_id"
                " JOIN reference r ON r.id = sr.reference_id"
                " WHERE r.kind = 'entry' ORDER BY c.id, r.value"
            )
        )
        for address, value in rows:
            if address in found:
                found[address].append(value)
    return found


def make_questions(engine: Engine, count: int, senders: list[str], seed: int) -> list[Question]:
    rng = random.Random(seed)
    want = count + 10
    pools = {
        "container": sample_values(engine, "container", want, rng),
        "entry": sample_values(engine, "entry", want, rng),
        "awb": sample_values(engine, "awb", want, rng),
    }
    own = own_entries(engine, senders)
    questions = []
    for i in range(count):
        sender = senders[i % len(senders)]
        roll, kind = rng.random(), "container"
        for name, share in MIX:
            if roll < share:
                kind = name
                break
            roll -= share
        if kind == "own" and not own[sender]:
            kind = "entry"
        if kind in ("entry", "awb") and not pools[kind]:
            kind = "container"
        if kind == "container":
            value = rng.choice(pools["container"])
            q = Question(kind, sender, rng.choice(EN_CONTAINER).format(c=typed_container(value, rng)), True)
        elif kind == "entry":
            q = Question(kind, sender, rng.choice(EN_ENTRY).format(e=rng.choice(pools["entry"])), True)
        elif kind == "awb":
            value = rng.choice(pools["awb"])
            q = Question(kind, sender, rng.choice(EN_AWB).format(a=f"{value[:3]}-{value[3:]}"), True)
        elif kind == "own":
            q = Question(kind, sender, rng.choice(EN_ENTRY).format(e=rng.choice(own[sender])), True)
        elif kind == "unknown":
            if rng.random() < 0.5:
                value = container_number(rng.choice(UNKNOWN_OWNERS), rng.randrange(1_000_000))
                q = Question(
                    kind, sender, rng.choice(EN_CONTAINER).format(c=typed_container(value, rng)), False
                )
            else:
                value = f"{rng.choice((24, 25, 26))}{UNKNOWN_OFFICE}IM4{rng.randrange(10**8):08d}"
                q = Question(kind, sender, rng.choice(EN_ENTRY).format(e=value), False)
        else:  # kiswahili
            if rng.random() < 0.5 or not pools["entry"]:
                shown = typed_container(rng.choice(pools["container"]), rng)
                q = Question(kind, sender, rng.choice(SW_CONTAINER).format(c=shown), True)
            else:
                q = Question(kind, sender, rng.choice(SW_ENTRY).format(e=rng.choice(pools["entry"])), True)
        questions.append(q)
    return questions


# --- measuring ---------------------------------------------------------------------------------


def markers() -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The opening words of the not-found answer and the rate-limit answer, in both languages."""
    not_found = tuple(
        catalogue.text("status.not_found", lang, label="\x00", contact="\x00").split("\x00")[0]
        for lang in catalogue.LANGUAGES
    )
    limited = tuple(
        catalogue.text("rate.limited", lang, contact="\x00").split("\x00")[0] for lang in catalogue.LANGUAGES
    )
    return not_found, limited


class Target:
    """One database under test: ask questions, time them, check the answers."""

    def __init__(self, label: str, shipments: int, path: Path, ctx: Context) -> None:
        self.label, self.shipments, self.path, self.ctx = label, shipments, path, ctx
        self.engine = make_engine(f"sqlite:///{path}")
        self.latencies: list[float] = []
        self.by_kind: dict[str, list[float]] = defaultdict(list)
        self.unexpected: list[tuple[Question, str]] = []
        self.not_found, self.limited = markers()

    def ask(self, question: Question, *, measure: bool = True) -> str:
        now = datetime.now(UTC)
        inbound = Inbound(
            address=question.sender,
            text=question.text,
            received_at=now,
            provider_id=f"bench-{uuid.uuid4().hex}",
        )
        started = time.perf_counter()
        with write_session(self.engine) as session:
            answered = receive(session=session, inbound=inbound, ctx=self.ctx, now=now)
            replies = answered.replies if answered else None
        elapsed = time.perf_counter() - started
        answer = "\n\n".join(r.text for r in replies or [])
        found = not any(m in answer for m in self.not_found)
        if not answer or any(answer.startswith(m) for m in self.limited) or found != question.expect_found:
            self.unexpected.append((question, answer))
        if measure:
            self.latencies.append(elapsed)
            self.by_kind[question.kind].append(elapsed)
        return answer

    def close(self) -> None:
        dispose(self.engine)


def percentile(values: list[float], pct: float) -> float:
    """Nearest-rank percentile, in milliseconds."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    rank = max(1, min(len(ordered), round(pct / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1] * 1000


@contextmanager
def captured_sql(engine: Engine) -> Iterator[list[str]]:
    """Every statement SQLite runs on ``engine``'s connections checked out meanwhile, with its
    parameters filled in (SQLite's trace callback: it sees what ``storage.prepared`` runs on the
    driver as well as what goes through SQLAlchemy)."""
    statements: list[str] = []

    def trace(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
        dbapi_connection.set_trace_callback(statements.append)

    def untrace(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.set_trace_callback(None)

    event.listen(engine, "checkout", trace)
    event.listen(engine, "checkin", untrace)
    try:
        yield statements
    finally:
        event.remove(engine, "checkout", trace)
        event.remove(engine, "checkin", untrace)


GROWING = (
    "shipment",
    "reference",
    "shipmentreference",
    "hold",
    "timelineevent",
    "inboundmessage",
    "outbox",
    "subscription",
    "shipmentcontact",
    "contact",
)


@dataclass
class PlanReport:
    full_scans: list[str]  # a SCAN of a table that grows with the business, without an index
    lookup_plan: str  # how the hourly lookup count is found (must use ix_inbound_address_at)


def explain(target: Target, questions: list[Question], *, show: bool) -> PlanReport:
    """EXPLAIN QUERY PLAN for every statement one question of each kind runs."""
    seen: list[str] = []
    for kind in dict.fromkeys(q.kind for q in questions):
        question = next(q for q in questions if q.kind == kind)
        with captured_sql(target.engine) as statements:
            target.ask(question, measure=False)
        for statement in statements:
            head = statement.lstrip().split(None, 1)[0].upper()
            if head in ("SELECT", "UPDATE", "DELETE") and statement not in seen:
                seen.append(statement)
    report = PlanReport([], "")
    with target.engine.connect() as conn:
        for statement in seen:
            plan = [row[-1] for row in conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}")]
            for line in plan:
                words = [w for w in line.split() if w != "TABLE"]  # SQLite before 3.36: "SCAN TABLE x"
                if words[:1] == ["SCAN"] and len(words) > 1 and words[1] in GROWING and "INDEX" not in line:
                    report.full_scans.append(f"{line} :: {' '.join(statement.split())[:160]}")
            if "sum(earlier.lookups)" in statement:  # the arrival read: the hourly lookup count
                report.lookup_plan = "; ".join(line for line in plan if "earlier" in line)
            if show:
                print("  " + " ".join(statement.split())[:200])
                for line in plan:
                    print(f"      {line}")
    return report


def run(args: argparse.Namespace) -> dict[str, Any]:
    cache = Path(args.cache_dir)
    cache.mkdir(parents=True, exist_ok=True)
    senders = sender_addresses(args.senders)
    ctx = Context(lookup_limit_per_hour=10**9)
    targets, builds = [], {}
    for label, n in (("small", args.small), ("large", args.large)):
        path, seconds = cached_database(cache, n, seed=args.seed, senders=senders, rebuild=args.rebuild)
        builds[label] = seconds
        targets.append(Target(label, n, working_copy(path), ctx))
    small, large = targets
    try:
        drawn = {}
        for target in targets:
            started = time.perf_counter()
            questions = make_questions(target.engine, args.warmup + args.questions, senders, args.seed + 7)
            drawn[target.label] = (questions[: args.warmup], questions[args.warmup :])
            log(
                f"{target.label}: {len(questions):,} questions drawn in {time.perf_counter() - started:.1f} s"
            )
        for target in targets:  # warm up: caches, connection pool, the OS page cache of the file
            for question in drawn[target.label][0]:
                target.ask(question, measure=False)
        for start in range(0, args.questions, CHUNK):
            for target in targets if (start // CHUNK) % 2 == 0 else targets[::-1]:
                for question in drawn[target.label][1][start : start + CHUNK]:
                    target.ask(question)
        plan = explain(large, drawn["large"][1], show=args.explain)
    finally:
        for target in targets:
            target.close()
            remove_copy(target.path)

    for target in targets:
        lat = target.latencies
        print(
            f"{target.label:5} {target.shipments:>9,} shipments: {len(lat):,} questions"
            f"  p50 {percentile(lat, 50):.2f} ms  p90 {percentile(lat, 90):.2f} ms"
            f"  p99 {percentile(lat, 99):.2f} ms  max {max(lat) * 1000:.2f} ms"
            + (f"  (built in {builds[target.label]:.0f} s)" if builds[target.label] else "  (cached)")
        )
        for kind, values in sorted(target.by_kind.items()):
            print(
                f"      {kind:9} n={len(values):5}  p50 {percentile(values, 50):.2f} ms"
                f"  p99 {percentile(values, 99):.2f} ms"
            )
        for question, answer in target.unexpected[:5]:
            print(f"  UNEXPECTED [{question.kind}] {question.text!r} -> {answer[:120]!r}")
    ratio = percentile(large.latencies, 50) / percentile(small.latencies, 50)
    ratio99 = percentile(large.latencies, 99) / percentile(small.latencies, 99)
    print(f"scale ratio (p50 large / p50 small): {ratio:.2f}  (goal <= 1.5); p99 ratio {ratio99:.2f}")
    print(f"lookup count plan: {plan.lookup_plan}")
    for scan in plan.full_scans:
        print(f"  FULL SCAN: {scan}")
    return {
        "p50_ms": round(percentile(large.latencies, 50), 3),
        "p99_ms": round(percentile(large.latencies, 99), 3),
        "p50_ms_1k": round(percentile(small.latencies, 50), 3),
        "p99_ms_1k": round(percentile(small.latencies, 99), 3),
        "p50_ms_1m": round(percentile(large.latencies, 50), 3),
        "p99_ms_1m": round(percentile(large.latencies, 99), 3),
        "scale_ratio_1m_vs_1k": round(ratio, 3),
        "scale_ratio_p99": round(ratio99, 3),
        "goal_met": ratio <= 1.5,
        "shipments_small": small.shipments,
        "shipments_large": large.shipments,
        "questions": args.questions,
        "warmup": args.warmup,
        "senders": args.senders,
        "kinds": dict(Counter(q.kind for q in drawn["large"][1])),
        "unexpected_replies": len(small.unexpected) + len(large.unexpected),
        "full_scans": plan.full_scans,
        "lookup_plan": plan.lookup_plan,
        "build_seconds_small": round(builds["small"], 1),
        "build_seconds_large": round(builds["large"], 1),
        "sqlite": sqlite3.sqlite_version,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--small", type=int, default=1_000, help="shipments in the small database")
    parser.add_argument("--large", type=int, default=1_000_000, help="shipments in the large database")
    parser.add_argument("--questions", type=int, default=2_000, help="measured questions per size")
    parser.add_argument("--warmup", type=int, default=200, help="unmeasured questions per size first")
    parser.add_argument("--senders", type=int, default=6, help="distinct senders asking")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--rebuild", action="store_true", help="build the databases again")
    parser.add_argument("--cache-dir", default=str(DEFAULT_CACHE), help="where built databases are kept")
    parser.add_argument("--explain", action="store_true", help="print the query plans of one question")
    args = parser.parse_args(argv)
    if min(args.small, args.large) < 10 or args.questions < 1 or not 1 <= args.senders <= 40:
        parser.error("need at least 10 shipments per size, 1 question and 1-40 senders")
    result = run(args)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
