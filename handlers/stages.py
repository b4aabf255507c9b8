"""The clearance vocabulary: the stages a shipment goes through and the holds that stop its release.

Pure data and parsing. Staff type stages and holds in their own words ("landed", "gate out", "under
control"); ``parse_stage`` and ``parse_hold`` turn those into the canonical names below, which the
storage layer keeps and the catalogue (``handlers/catalogue.toml``) explains to customers.
"""

from __future__ import annotations

import re

STAGES: tuple[str, ...] = (
    "booked",
    "in_transit",
    "arrived",
    "declared",
    "assessed",
    "paid",
    "released",
    "collected",
    "delivered",
)

HOLDS: tuple[str, ...] = ("inspection", "kebs", "docs", "agency", "amend")

# What staff may type for each stage, written the way a person would read it in a help or error message.
# Matching ignores case, spaces, hyphens and underscores, so "Gate-out", "gate out" and "GATEOUT" agree.
# iCMS (KRA's customs system) declaration statuses are here where they map onto one of our stages;
# "Under Control" and "To Amend" are holds (below); "Created" and "Amended" say nothing about where the
# cargo is, so they are left out on purpose.
STAGE_ALIASES: dict[str, str] = {
    # booked in the UK
    "booked": "booked",
    "booking": "booked",
    "booking confirmed": "booked",
    "booked in uk": "booked",
    "received in uk": "booked",
    "uk warehouse": "booked",
    "at uk warehouse": "booked",
    # on the way to Kenya
    "in transit": "in_transit",
    "transit": "in_transit",
    "shipped": "in_transit",
    "sailed": "in_transit",
    "flown": "in_transit",
    "departed": "in_transit",
    "dispatched": "in_transit",
    "loaded": "in_transit",
    "on board": "in_transit",
    "at sea": "in_transit",
    "en route": "in_transit",
    "on the way": "in_transit",
    "left uk": "in_transit",
    "njiani": "in_transit",
    # arrived at Mombasa port, JKIA or ICD Embakasi; on the manifest in iCMS
    "arrived": "arrived",
    "arrival": "arrived",
    "landed": "arrived",
    "docked": "arrived",
    "discharged": "arrived",
    "offloaded": "arrived",
    "at port": "arrived",
    "in port": "arrived",
    "at mombasa": "arrived",
    "at jkia": "arrived",
    "at icd": "arrived",
    "manifest": "arrived",
    "manifested": "arrived",
    "imefika": "arrived",
    # declaration lodged (entry registered)
    "declared": "declared",
    "declaration": "declared",
    "declaration lodged": "declared",
    "lodged": "declared",
    "entry": "declared",
    "entry lodged": "declared",
    "entry registered": "declared",
    "registered": "declared",  # iCMS "Registered"
    # duty assessed, waiting for payment (e-slip)
    "assessed": "assessed",
    "assessment": "assessed",
    "duty": "assessed",
    "duty assessed": "assessed",
    "awaiting payment": "assessed",
    "waiting for payment": "assessed",
    "pending payment": "assessed",
    "unpaid": "assessed",
    "e-slip": "assessed",
    # payment confirmed
    "paid": "paid",
    "duty paid": "paid",
    "payment confirmed": "paid",
    "payment received": "paid",
    "accepted": "paid",  # iCMS "Accepted": taxes paid or bond given
    "pending release": "paid",  # iCMS "Pending Release"
    "imelipwa": "paid",
    # Customs Release Message issued
    "released": "released",
    "release": "released",
    "crm": "released",
    "customs release": "released",
    "customs release message": "released",
    "release message": "released",
    "cleared": "released",
    "customs cleared": "released",
    "cleared customs": "released",
    "pending removal": "released",  # iCMS "Pending Removal": released, awaiting pickup
    "imeruhusiwa": "released",
    "imetolewa": "released",
    # collected / gate-out
    "collected": "collected",
    "collection": "collected",
    "gate out": "collected",
    "gated out": "collected",
    "picked up": "collected",
    "out": "collected",
    "out for delivery": "collected",
    "removed": "collected",
    "left port": "collected",
    "settled": "collected",  # iCMS "Settled"
    "imechukuliwa": "collected",
    "imetoka": "collected",
    # delivered
    "delivered": "delivered",
    "done": "delivered",
    "complete": "delivered",
    "completed": "delivered",
    "finished": "delivered",
    "handed over": "delivered",
    "imefikishwa": "delivered",
}

HOLD_ALIASES: dict[str, str] = {
    # customs inspection: document check, scanning or physical verification (iCMS "Under Control")
    "inspection": "inspection",
    "customs inspection": "inspection",
    "under control": "inspection",
    "scan": "inspection",
    "scanning": "inspection",
    "verification": "inspection",
    "physical": "inspection",
    "physical verification": "inspection",
    "physical inspection": "inspection",
    "examination": "inspection",
    "document check": "inspection",
    "ukaguzi": "inspection",
    # KEBS (Kenya Bureau of Standards) verification
    "kebs": "kebs",
    "kebs verification": "kebs",
    "kebs inspection": "kebs",
    "standards": "kebs",
    "pvoc": "kebs",
    "coc": "kebs",
    "certificate of conformity": "kebs",
    # additional documents needed
    "docs": "docs",
    "documents": "docs",
    "document": "docs",
    "documentation": "docs",
    "paperwork": "docs",
    "more documents": "docs",
    "additional documents": "docs",
    "missing documents": "docs",
    "documents needed": "docs",
    "nyaraka": "docs",
    # another government agency
    "agency": "agency",
    "oga": "agency",
    "other agency": "agency",
    "government agency": "agency",
    "other government agency": "agency",
    "kephis": "agency",
    "port health": "agency",
    "ppb": "agency",
    "pharmacy and poisons board": "agency",
    "radiation": "agency",
    "radiation protection board": "agency",
    # amendment needed (iCMS "To Amend": a discrepancy in the declaration)
    "amend": "amend",
    "to amend": "amend",
    "amendment": "amend",
    "amendment needed": "amend",
    "discrepancy": "amend",
    "correction": "amend",
    "marekebisho": "amend",
}

_IGNORED = re.compile(r"[\s\-_\u2010-\u2015]+")  # spaces, hyphens, underscores, typographic dashes
_EDGE_PUNCTUATION = "\"'`.,;:!?()[]"


def _fold(word: str) -> str:
    return _IGNORED.sub("", word.casefold().strip().strip(_EDGE_PUNCTUATION))


_STAGE_LOOKUP: dict[str, str] = {_fold(alias): stage for alias, stage in STAGE_ALIASES.items()}
_HOLD_LOOKUP: dict[str, str] = {_fold(alias): hold for alias, hold in HOLD_ALIASES.items()}


def parse_stage(word: str) -> str | None:
    """The canonical stage for what staff typed, or None when it is not a stage we know."""
    return _STAGE_LOOKUP.get(_fold(word))


def parse_hold(word: str) -> str | None:
    """The canonical hold for what staff typed, or None when it is not a hold we know."""
    return _HOLD_LOOKUP.get(_fold(word))


def stage_index(stage: str) -> int:
    """Position of a canonical stage in ``STAGES``; ValueError for anything else."""
    try:
        return STAGES.index(stage)
    except ValueError:
        raise ValueError(f"unknown stage {stage!r}; expected one of {', '.join(STAGES)}") from None


def is_released(stage: str) -> bool:
    """True once customs have released the cargo: released, collected, delivered."""
    return stage_index(stage) >= STAGES.index("released")
