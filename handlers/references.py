"""Find shipment references in free text: containers, air waybills, bills of lading, customs
entries, IDFs and KRA PINs (DESIGN.md §3).

Pure: importing compiles regexes and nothing else. One master regex walks the text once, left to
right; each alternative is a kind's shape with separators (space, hyphen, slash, dot, brackets)
allowed where people type them. Digit-only runs cannot be told apart by shape alone (an AWB, a
phone number, a date and an amount can all be eleven digits), so they go through one more step
that reads the words just before the run ("AWB", "B/L", "call", "invoice", ...).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from itertools import accumulate

from stdnum import iso6346
from stdnum.ke import pin as kra_pin

__all__ = ["Reference", "describe_kind", "find_references"]

_KIND_NAMES = {
    "container": "Container",
    "awb": "Air waybill",
    "bl": "Bill of lading",
    "entry": "Customs entry",
    "idf": "IDF",
    "kra_pin": "KRA PIN",
    "job": "Job reference",
}

AIRLINES = {
    "706": "Kenya Airways",
    "125": "British Airways",
    "176": "Emirates",
    "157": "Qatar",
    "235": "Turkish",
    "071": "Ethiopian",
    "074": "KLM",
    "057": "Air France",
    "607": "Etihad",
    "065": "Saudia",
    "077": "EgyptAir",
    "020": "Lufthansa",
    "932": "Virgin Atlantic",
    "724": "Swiss",
    "172": "Cargolux",
    "485": "Astral",
}

CONTAINER_OWNERS = {
    **dict.fromkeys(("MSKU", "MAEU", "MRKU", "MRSU"), "Maersk"),
    **dict.fromkeys(("MSCU", "MEDU"), "MSC"),
    **dict.fromkeys(("CMAU", "CGMU"), "CMA CGM"),
    **dict.fromkeys(("HLXU", "HLBU", "HLCU"), "Hapag-Lloyd"),
    "ONEU": "ONE",
    **dict.fromkeys(("EGHU", "EISU", "EMCU"), "Evergreen"),
    **dict.fromkeys(("CSNU", "CBHU", "CCLU"), "COSCO"),
    **dict.fromkeys(("OOLU", "OOCU"), "OOCL"),
    "ZIMU": "ZIM",
    **dict.fromkeys(("YMLU", "YMMU"), "Yang Ming"),
    "HDMU": "HMM",
}

_SEPARATORS = " \t\u00a0\u202f-\u2010\u2011\u2012\u2013\u2014/.[]()"
_DASHES = frozenset("-\u2010\u2011\u2012\u2013\u2014")
_SEP = "[" + "".join(re.escape(c) for c in _SEPARATORS) + "]"
_S = _SEP + "{0,3}"  # a separator run between two significant characters: "-", " - ", " ["

_STRIP = str.maketrans("", "", _SEPARATORS)
# O/0 and I/1 confusions (l too, which is I in most fonts), only ever applied to digit blocks.
_CONFUSABLE = str.maketrans("OoIiLl", "001111")
_DIGIT_BLOCK = str.maketrans("OoIiLl", "001111", _SEPARATORS)


def _digits(low: int, high: int | None = None, first: str = "[0-9]") -> str:
    """``low``..``high`` digits, each pair possibly separated (``203 176-301``); after the first,
    an O, I or L glued to the digit before stands for 0 or 1 (``4OO448715``). A block of varying
    length ends on a digit, or on one such letter glued to a digit, so it does not run into a
    word glued after it (``1234oil``)."""
    high = low if high is None else high
    glued = f"(?:[0-9OIL]|{_SEP}{{1,3}}[0-9])"
    if high == low:
        return f"{first}{glued}{{{low - 1}}}"
    return f"{first}{glued}{{{low - 2},{high - 2}}}(?:{_S}[0-9]|(?<=[0-9])[OIL])"


# Bills of lading by carrier prefix (DESIGN §3). Letter and alphanumeric blocks are typed
# contiguously; separators go between the prefix and blocks and inside digit blocks.
_BL_SHAPES = {
    "Maersk": f"MAEU{_S}{_digits(9)}",
    "MSC": f"MEDU{_S}[A-Z0-9]{{2}}{_S}{_digits(6)}",
    "Hapag-Lloyd": f"HLCU{_S}(?=[A-Z]{{0,11}}[0-9])[A-Z0-9]{{12}}",
    "ONE": f"ONEY{_S}(?=[A-Z]{{0,11}}[0-9])[A-Z0-9]{{12}}",
    "Evergreen": f"EGLV{_S}{_digits(12)}",
    "CMA CGM": f"CMDU{_S}[A-Z]{{3,4}}{_S}{_digits(6, 7)}",
    "COSCO": f"COSU{_S}{_digits(10)}",
    "OOCL": f"OOLU{_S}{_digits(10)}",
    "ZIM": f"ZIMU{_S}[A-Z]{{3}}{_S}{_digits(4, 8)}",
    "Yang Ming": f"YMLU{_S}[EBTW]{_S}{_digits(9)}",
    "HMM": f"HDMU{_S}[A-Z]{{4}}{_S}{_digits(7, 8)}",
}
_BL_GROUPS = {f"bl{i}": carrier for i, carrier in enumerate(_BL_SHAPES)}
# Where a B/L's digit block starts: its first digit after the prefix and this many characters
# of the letter block (the block begins with a digit, so an O/I/L glued there is a letter).
_BL_DIGITS_AFTER = {
    "Maersk": 4,
    "MSC": 6,
    "Evergreen": 4,
    "CMA CGM": 7,
    "COSCO": 4,
    "OOCL": 4,
    "ZIM": 7,
    "Yang Ming": 5,
    "HMM": 8,
}

_END = "(?![A-Z0-9])"
# Container: letters O, I, L stand for 0/1 only when glued to the character before, so
# "MSKU907032 I think" does not read the pronoun as a check digit. Without its check digit, a
# container must not be followed by more digits: "MAEU 203176 301" is a Maersk B/L.
_CONTAINER = (
    f"[A-Z]{{3}}[UJZ](?:{_S}[0-9]|[OIL])(?:{_S}[0-9]|[OIL]){{5}}"
    f"(?:(?:{_S}[0-9]|[OIL]){_END}|(?!{_S}[0-9]|[A-Z0-9]))"
)
# The regime digit is typed as a letter often enough ("IMO" for an IDF's IM0) to read one glued there.
_ENTRY = f"[0-9]{{2}}{_S}[A-Z]{{3}}{_S}(?:IM|EX){_digits(9, first=f'(?:[OIL]|{_S}[0-9])')}{_END}"
_PIN = f"[AP][0-9]{{9}}[A-Z]{_END}"
# A run of digit groups: the caller splits it into references. A leading "+" marks a phone number.
# "AWB176..." and "B/L625..." are typed glued often enough to allow those words before a run.
_DIGIT_RUN = (
    "(?:AWB|B/?L)?(?<!\\+)"
    f"(?=(?:[+0-9OIL]|{_SEP}){{9}})"  # under nine characters cannot hold a digit reference
    f"(?P<digits>(?:\\+ ?)?[0-9][0-9OIL]*(?:{_SEP}{{1,3}}[0-9][0-9OIL]*)*){_END}"
)

_MASTER = re.compile(
    "(?<![A-Z0-9])(?:"
    + "|".join(
        [f"(?P<container>{_CONTAINER})"]
        + [f"(?P<{name}>{_BL_SHAPES[carrier]}){_END}" for name, carrier in _BL_GROUPS.items()]
        + [f"(?P<kra_pin>{_PIN})", f"(?P<entry>{_ENTRY})", _DIGIT_RUN]
    )
    + ")",
    re.ASCII | re.IGNORECASE,
)
_SEPARATOR_RUN = re.compile(f"({_SEP}+)")
_HAS_DIGIT = re.compile("[0-9]")

# Words that say what a following digit run is, looked up word by word from the nearest back.
_KEYWORDS = {
    **dict.fromkeys("awb awbs mawb hawb waybill waybills airwaybill".split(), "awb"),
    **dict.fromkeys("b/l bl bls bol mbl hbl lading".split(), "bl"),  # "bill of lading"
    "maersk": "maersk",
    "cosco": "cosco",
    **dict.fromkeys("call phone tel whatsapp wa mobile mob cell sms text contact simu piga".split(), "phone"),
    **dict.fromkeys(
        "invoice inv receipt slip eslip payment paid pay paybill till prn mpesa pesa kes ksh kshs usd gbp "
        "amount account acc a/c order".split(),
        "other",
    ),
    # "AWB number", "B/L no.": the word before says whose number; alone, "number" means a phone.
    **dict.fromkeys("number namba nambari no nos num nbr".split(), "number"),
    **dict.fromkeys(("bill", "bills"), "bill"),  # an AWB after "way" / "airway", else nothing
}
_WORD = re.compile("[A-Za-z]+(?:/[A-Za-z]+)?")
_CONTEXT_WINDOW = 48
# The lengths a digit run may be read as, by context: an AWB always, B/Ls only when named.
_LENGTHS = {"bl": (11, 10, 9), "cosco": (11, 10), "maersk": (11, 9)}


@dataclass(frozen=True, slots=True)
class Reference:
    """One reference found in a message; ``text[span[0]:span[1]]`` is how it was typed."""

    kind: str
    value: str
    valid: bool
    span: tuple[int, int]
    carrier: str | None = None
    suggestion: str | None = None

    def to_dict(self) -> dict:
        return {
            "kind": self.kind,
            "value": self.value,
            "valid": self.valid,
            "carrier": self.carrier,
            "span": list(self.span),
            "suggestion": self.suggestion,
        }

    @property
    def display(self) -> str:
        if self.kind == "awb":
            return f"{self.value[:3]}-{self.value[3:]}"
        return self.value


def describe_kind(kind: str) -> str:
    """The English name of a kind, for labels: ``"awb"`` → ``"Air waybill"``."""
    try:
        return _KIND_NAMES[kind]
    except KeyError:
        raise ValueError(f"unknown reference kind {kind!r}") from None


def find_references(text: str, *, job_pattern: re.Pattern[str] | None = None) -> list[Reference]:
    """Every reference in ``text``, in order of appearance, each value once.

    ``job_pattern`` is the forwarder's own job number format; its matches are kind ``"job"`` and
    win over any other reading of the same characters, since the forwarder configured it.
    """
    found: list[Reference] = []
    if _HAS_DIGIT.search(text):  # every standard kind has digits: most chatter stops here
        for match in _MASTER.finditer(text):
            name = match.lastgroup
            if name == "digits":
                found.extend(_from_digit_run(text, match))
            else:
                ref = _from_shape(name, match)
                if ref is not None:
                    found.append(ref)
    if job_pattern is not None:
        jobs = _jobs(text, job_pattern)
        if jobs:
            found = [r for r in found if not any(_overlap(r.span, j.span) for j in jobs)] + jobs
            found.sort(key=lambda r: r.span[0])
    if len(found) < 2:
        return found
    seen: set[str] = set()
    unique = []
    for ref in found:
        if ref.value not in seen:
            seen.add(ref.value)
            unique.append(ref)
    return unique


def _overlap(a: tuple[int, int], b: tuple[int, int]) -> bool:
    return a[0] < b[1] and b[0] < a[1]


def _jobs(text: str, pattern: re.Pattern[str]) -> list[Reference]:
    jobs = []
    for match in pattern.finditer(text):
        value = match.group().translate(_STRIP).upper()
        if value:
            jobs.append(Reference("job", value, True, match.span()))
    return jobs


def _from_shape(name: str | None, match: re.Match[str]) -> Reference | None:
    typed = match.group()
    span = match.span()
    if name == "container":
        return _container(typed, span)
    if name == "kra_pin":
        value = typed.translate(_STRIP).upper()
        return Reference("kra_pin", value, kra_pin.is_valid(value), span)
    value = typed.translate(_STRIP).upper()
    if name == "entry":  # year, office, IM/EX, then the digit block
        value = value[:7] + value[7:].translate(_CONFUSABLE)
        kind = "idf" if value[5:8] == "IM0" else "entry"
        return Reference(kind, value, True, span)
    carrier = _BL_GROUPS[name or ""]
    after = _BL_DIGITS_AFTER.get(carrier)
    if after is not None:
        start = next(i for i in range(after, len(value)) if value[i].isdigit())
        value = value[:start] + value[start:].translate(_CONFUSABLE)
    return Reference("bl", value, True, span, carrier=carrier)


def _container(typed: str, span: tuple[int, int]) -> Reference | None:
    owner = typed[:4].upper()  # the master regex allows no separator inside the owner code
    value = owner + typed[4:].translate(_DIGIT_BLOCK)
    carrier = CONTAINER_OWNERS.get(owner)
    # The master regex has checked the shape, so the check digit is all is_valid() would add.
    expected = value[:10] + iso6346.calc_check_digit(value[:10])
    if value == expected:
        return Reference("container", value, True, span, carrier)
    # A lower-case word ending in u/j/z, a space, then six or seven digits ("watu 100 000") is
    # prose, not a mistyped container; a typo is reported only when it looks like a container.
    if not (typed[:4].isupper() or carrier or typed[4] not in _SEPARATORS):
        return None
    return Reference("container", value, False, span, carrier, expected)


def _context(text: str, start: int) -> str | None:
    """The kind of the last keyword shortly before ``start``: awb, bl, maersk, cosco, phone, other."""
    words = _WORD.findall(text, max(0, start - _CONTEXT_WINDOW), start)
    for i in range(len(words) - 1, -1, -1):
        kind = _KEYWORDS.get(words[i].lower())
        if kind == "number":
            before = _KEYWORDS.get(words[i - 1].lower()) if i else None
            if before not in (None, "number", "bill"):
                return before
            if words[i].lower() in ("number", "namba", "nambari"):
                return "phone"
        elif kind == "bill":
            if i and words[i - 1].lower() in ("way", "airway"):
                return "awb"
        elif kind is not None:
            return kind
    return None


def _from_digit_run(text: str, match: re.Match[str]) -> list[Reference]:
    """Split a run of digit groups ("12/03/2024 176 1234 5675 2") into the references it holds.

    References start and end on group boundaries; at each group the longest reading wins.
    """
    start, end = match.span("digits")
    run = match.group("digits")
    compact = run.translate(_STRIP)
    if len(compact) < 9 or (compact[0] == "+" and len(compact) <= 13):
        return []  # too short, or an international phone number and nothing else
    if compact == run and len(run) > 11:
        return []
    context = _context(text, start)
    if context == "other":
        return []
    if compact == run:  # one group typed without separators: the common case, read directly
        ref = _digit_reference(run.translate(_CONFUSABLE), (start, end), context, "")
        return [] if ref is None else [ref]
    body = run.lstrip("+ ")
    # parts alternate group, separator, group, ...; offsets[2k] and offsets[2k + 1] bound group k.
    parts = _SEPARATOR_RUN.split(body)
    offsets = list(accumulate(map(len, parts), initial=start + len(run) - len(body)))
    groups = parts[::2]
    ends = list(accumulate(map(len, groups), initial=0))
    joined = "".join(groups).translate(_CONFUSABLE)
    boundary = dict(zip(ends, range(len(ends)), strict=True))
    first = 0
    intl = 12 if run[0] == "+" else 0
    if context != "awb" and joined.startswith(("00254", "0044")):
        intl = 14
    while intl and first < len(groups) and (first == 0 or ends[first + 1] <= intl):
        first += 1  # an international phone number: +254 712 345 678, 0044 20 7946 0000
    lengths = _LENGTHS.get(context, (11,))
    found = []
    i = first
    while i < len(groups):
        for length in lengths:
            j = boundary.get(ends[i] + length)
            if j is None:
                continue
            # The separator after the first group tells "074-12345675" (an AWB) from a phone number.
            after_prefix = parts[2 * i + 1] if j == i + 2 and ends[i + 1] - ends[i] == 3 else ""
            span = (offsets[2 * i], offsets[2 * j - 1])
            ref = _digit_reference(joined[ends[i] : ends[j]], span, context, after_prefix)
            if ref is not None:
                found.append(ref)
                i = j
                break
        else:
            i += 1
    return found


def _digit_reference(
    value: str, span: tuple[int, int], context: str | None, after_prefix: str
) -> Reference | None:
    """Read a digit string by its length and the words before it; None when it is no reference.

    Eleven digits are an AWB after "AWB"/"waybill", or with a known airline prefix. A leading 0
    is a UK phone number's shape (07487554202 even passes the check with KLM's 074, and 020 is
    both London and Lufthansa), so it needs the AWB word or the AWB's own "074-12345675" typing.
    Nine and ten digits are a Maersk or COSCO B/L only when the text says so.
    """
    if len(value) == 11:
        if context != "awb":
            if value[0] == "0" and (context == "phone" or after_prefix not in _DASHES):
                return None
            if value[:3] not in AIRLINES:
                return None
        check = str(int(value[3:10]) % 7)
        valid = value[10] == check
        return Reference(
            "awb", value, valid, span, AIRLINES.get(value[:3]), None if valid else value[:10] + check
        )
    if len(value) == 10 and context in ("bl", "cosco"):
        return Reference("bl", value, True, span, "COSCO")
    if len(value) == 9 and context in ("bl", "maersk"):
        return Reference("bl", value, True, span, "Maersk")
    return None
