"""Benchmark the reference recogniser against a bare regex scan over the same messages.

Builds realistic customer messages (deterministic seed): greetings, Kiswahili, every reference
kind typed several ways, phone numbers, amounts, dates. Times ``find_references`` over all of
them, then one ``re.finditer`` pass of a single alternation of the kind shapes (the baseline: the
least any regex-based recogniser must do). The last line printed is a JSON object.

    python bench/references.py [--messages N] [--repeat R] [--seed S]
"""

from __future__ import annotations

import argparse
import json
import random
import re
import string
import sys
import time

from stdnum import iso6346

from handlers.references import AIRLINES, find_references

# The baseline: each kind's shape as a plain pattern, the same separators allowed, one alternation.
_S = r"[\s\-/.\[\]()]{0,3}"
BASELINE = re.compile(
    "|".join(
        [
            rf"\b[A-Z]{{3}}[UJZ]{_S}\d(?:{_S}\d){{5,6}}\b",  # container
            rf"\b\d{{3}}{_S}\d(?:{_S}\d){{7}}\b",  # air waybill
            rf"\b(?:MAEU|MEDU|HLCU|ONEY|EGLV|CMDU|COSU|OOLU|ZIMU|YMLU|HDMU){_S}[A-Z0-9](?:{_S}[A-Z0-9]){{7,11}}\b",
            rf"\b\d(?:{_S}\d){{8,9}}\b",  # bare Maersk / COSCO B/L
            rf"\b\d{{2}}{_S}[A-Z]{{3}}{_S}(?:IM|EX){_S}\d(?:{_S}\d){{8}}\b",  # entry, IDF
            r"\b[AP]\d{9}[A-Z]\b",  # KRA PIN
        ]
    ),
    re.IGNORECASE,
)

GREETINGS = [
    "Hi",
    "Hello, good morning",
    "Habari yako?",
    "Mambo vipi",
    "Asante sana 🙏",
    "Thanks!",
    "Sawa, nitasubiri",
    "Any update please?",
    "Niko njiani",
    "ok 👍",
    "Good evening team",
    "Shikamoo",
    "Tafadhali nisaidie",
    "Is the office open on Saturday?",
    "HELP",
    "STOP",
    "LANG SW",
    "agent please",
    "Mzigo wangu umefika?",
    "When will iCMS be back up?",
]
OWNERS = ["MSKU", "MAEU", "MSCU", "MEDU", "CMAU", "HLXU", "ONEU", "EGHU", "CSNU", "OOLU", "TCNU", "TGHU"]
BL_MAKERS = [
    lambda r: "MAEU" + _num(r, 9),
    lambda r: "MEDU" + r.choice(["HG", "UK", "LN"]) + _num(r, 6),
    lambda r: (
        "HLCU" + r.choice(["HAM", "LON"]) + _num(r, 4) + "".join(r.choices(string.ascii_uppercase, k=4)) + "1"
    ),
    lambda r: "EGLV" + _num(r, 12),
    lambda r: "ZIMU" + "LON" + _num(r, 6),
    lambda r: "B/L " + _num(r, 10),
    lambda r: "Maersk BL " + _num(r, 9),
]


def _num(rng: random.Random, n: int) -> str:
    return "".join(rng.choices(string.digits, k=n))


def _container(rng: random.Random) -> str:
    head = rng.choice(OWNERS) + _num(rng, 6)
    full = head + iso6346.calc_check_digit(head)
    style = rng.randrange(8)
    if style == 0:
        return full.lower()
    if style == 1:
        return f"{full[:4]} {full[4:10]} {full[10]}"
    if style == 2:
        return f"{full[:4]}-{full[4:10]}-{full[10]}"
    if style == 3:
        return full[:10]  # missing check digit
    if style == 4:
        return full[:5] + full[5:].replace("0", "O", 1)  # O/0 confusion
    if style == 5:
        return full[:10] + str((int(full[10]) + 1) % 10)  # wrong check digit
    return full


def _awb(rng: random.Random) -> str:
    prefix = rng.choice(list(AIRLINES))
    serial = _num(rng, 7)
    full = prefix + serial + str(int(serial) % 7)
    style = rng.randrange(4)
    if style == 0:
        return f"{full[:3]}-{full[3:]}"
    if style == 1:
        return f"{full[:3]} {full[3:7]} {full[7:]}"
    if style == 2:
        return "AWB " + full
    return full


def _entry(rng: random.Random) -> str:
    regime = rng.choice("0144")
    entry = f"{rng.choice(['24', '25', '26'])}{rng.choice(['MBA', 'NBO', 'EMK'])}IM{regime}{_num(rng, 8)}"
    return entry.lower() if rng.random() < 0.2 else entry


def _phone(rng: random.Random) -> str:
    ke = "7" + _num(rng, 8)
    uk = "7" + _num(rng, 9)
    return rng.choice(
        [
            f"+254 {ke[:3]} {ke[3:6]} {ke[6:]}",
            f"0{ke}",
            f"0{ke[:3]} {ke[3:]}",
            f"+44 {uk[:4]} {uk[4:]}",
            f"0{uk}",
            "020 7946 0" + _num(rng, 3),
            "+44 20 7946 0" + _num(rng, 3),
        ]
    )


def message(rng: random.Random) -> str:
    """One customer message; about a third carry a reference."""
    pick = rng.randrange(16)
    if pick < 5:
        return rng.choice(GREETINGS)
    if pick == 5:
        return f"Habari, kontena yangu {_container(rng)} iko wapi?"
    if pick == 6:
        return f"Where is my container {_container(rng)}? Also {_container(rng)} please"
    if pick == 7:
        return f"Any news on {_awb(rng)}? Shipped from LHR on {rng.randint(1, 28)}/0{rng.randint(1, 9)}/2025"
    if pick == 8:
        return f"{rng.choice(BL_MAKERS)(rng)} - status tafadhali"
    if pick == 9:
        return f"entry no. {_entry(rng)} imeruhusiwa?"
    if pick == 10:
        return f"My KRA PIN is {rng.choice('AP')}{_num(rng, 9)}{rng.choice(string.ascii_uppercase)}"
    if pick == 11:
        return f"{rng.choice(['call me on', 'whatsapp', 'namba yangu ni', 'tel'])} {_phone(rng)}"
    if pick == 12:
        return f"I paid KES {rng.randint(1, 999)},{rng.randint(0, 999):03d} via e-slip {_num(rng, 16)}"
    if pick == 13:
        return f"Invoice INV-2025-{_num(rng, 5)} for £{rng.randint(50, 5000)}.{rng.randint(0, 99):02d}"
    if pick == 14:
        return f"Delivery on {rng.randint(1, 28)}.{rng.randint(1, 12)}.2025 at {rng.randint(7, 18)}:30? 😊"
    return f"ALERT {_container(rng)} and {_awb(rng)}\nAsante {rng.choice(['Juma', 'Wanjiru', 'Sarah'])}"


def _time(fn, messages: list[str], repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        fn(messages)
        best = min(best, time.perf_counter() - started)
    return best


def _recognise(messages: list[str]) -> int:
    return sum(len(find_references(m)) for m in messages)


def _scan(messages: list[str]) -> int:
    finditer = BASELINE.finditer
    return sum(1 for m in messages for _ in finditer(m))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3, help="best of R timed runs")
    parser.add_argument("--seed", type=int, default=6346)
    args = parser.parse_args(argv)

    rng = random.Random(args.seed)
    messages = [message(rng) for _ in range(args.messages)]
    found = _recognise(messages)
    recogniser = _time(_recognise, messages, args.repeat)
    scan = _time(_scan, messages, args.repeat)
    ratio = recogniser / scan
    print(f"messages:        {len(messages):,} ({sum(map(len, messages)):,} characters)")
    print(f"references:      {found:,}")
    print(f"find_references: {recogniser:.3f} s  ({len(messages) / recogniser:,.0f} messages/s)")
    print(f"regex scan:      {scan:.3f} s  ({len(messages) / scan:,.0f} messages/s)")
    print(f"ratio:           {ratio:.2f} (goal <= 3)")
    print(
        json.dumps(
            {
                "messages": len(messages),
                "references": found,
                "seconds": round(recogniser, 4),
                "regex_scan_seconds": round(scan, 4),
                "messages_per_second": round(len(messages) / recogniser),
                "ratio_vs_regex_scan": round(ratio, 3),
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
