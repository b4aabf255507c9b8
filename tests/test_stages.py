"""The clearance vocabulary: stage and hold names, the words staff type for them, and their order."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from handlers.stages import (
    HOLD_ALIASES,
    HOLDS,
    STAGE_ALIASES,
    STAGES,
    is_released,
    parse_hold,
    parse_stage,
    stage_index,
)


def _fold(word: str) -> str:
    return re.sub(r"[\s\-_]+", "", word.lower())


class TestParseStage:
    @pytest.mark.parametrize(
        ("typed", "stage"),
        [
            ("booked", "booked"),
            ("Booking", "booked"),
            ("in transit", "in_transit"),
            ("in_transit", "in_transit"),
            ("In-Transit", "in_transit"),
            ("intransit", "in_transit"),
            ("shipped", "in_transit"),
            ("sailed", "in_transit"),
            ("on the way", "in_transit"),
            ("on-the-way", "in_transit"),
            ("landed", "arrived"),
            ("at port", "arrived"),
            ("arrived", "arrived"),
            ("lodged", "declared"),
            ("entry", "declared"),
            ("registered", "declared"),
            ("duty", "assessed"),
            ("assessment", "assessed"),
            ("awaiting payment", "assessed"),
            ("e-slip", "assessed"),
            ("eslip", "assessed"),
            ("payment confirmed", "paid"),
            ("paid", "paid"),
            ("CRM", "released"),
            ("release", "released"),
            ("cleared", "released"),
            ("gate out", "collected"),
            ("gate-out", "collected"),
            ("GATEOUT", "collected"),
            ("picked up", "collected"),
            ("out", "collected"),
            ("done", "delivered"),
            ("delivered", "delivered"),
            ("  Released.  ", "released"),
            ("in \t transit", "in_transit"),
            ("gate\u2011out", "collected"),  # a non-breaking hyphen from a phone keyboard
        ],
    )
    def test_friendly_words_map_to_the_canonical_stage(self, typed: str, stage: str) -> None:
        assert parse_stage(typed) == stage

    @pytest.mark.parametrize(
        ("icms_status", "stage"),
        [
            ("Registered", "declared"),
            ("Accepted", "paid"),
            ("Pending Release", "paid"),
            ("Pending Removal", "released"),
            ("Settled", "collected"),
        ],
    )
    def test_icms_declaration_statuses_map_where_they_mean_a_stage(
        self, icms_status: str, stage: str
    ) -> None:
        assert parse_stage(icms_status) == stage

    @pytest.mark.parametrize("stage", STAGES)
    def test_every_canonical_stage_parses_to_itself(self, stage: str) -> None:
        assert parse_stage(stage) == stage
        assert parse_stage(stage.upper().replace("_", " ")) == stage

    @pytest.mark.parametrize(
        "typed",
        [
            "",
            "   ",
            "banana",
            "maintenance",
            "stop",
            "under control",
            "kebs",
            "created",
            "amended",
            "in",
            "gate",
        ],
    )
    def test_unknown_words_are_none(self, typed: str) -> None:
        assert parse_stage(typed) is None


class TestParseHold:
    @pytest.mark.parametrize(
        ("typed", "hold"),
        [
            ("inspection", "inspection"),
            ("Under Control", "inspection"),
            ("under-control", "inspection"),
            ("scan", "inspection"),
            ("verification", "inspection"),
            ("physical", "inspection"),
            ("KEBS", "kebs"),
            ("kebs verification", "kebs"),
            ("docs", "docs"),
            ("documents", "docs"),
            ("Document", "docs"),
            ("agency", "agency"),
            ("KEPHIS", "agency"),
            ("port health", "agency"),
            ("Port-Health", "agency"),
            ("PPB", "agency"),
            ("radiation", "agency"),
            ("amend", "amend"),
            ("amendment", "amend"),
            ("To Amend", "amend"),
            ("discrepancy", "amend"),
        ],
    )
    def test_friendly_words_map_to_the_canonical_hold(self, typed: str, hold: str) -> None:
        assert parse_hold(typed) == hold

    @pytest.mark.parametrize("hold", HOLDS)
    def test_every_canonical_hold_parses_to_itself(self, hold: str) -> None:
        assert parse_hold(hold) == hold

    @pytest.mark.parametrize("typed", ["", "banana", "released", "paid", "amended", "health", "stop"])
    def test_unknown_words_are_none(self, typed: str) -> None:
        assert parse_hold(typed) is None


class TestAliasTables:
    def test_stage_aliases_point_at_known_stages(self) -> None:
        assert set(STAGE_ALIASES.values()) == set(STAGES)

    def test_hold_aliases_point_at_known_holds(self) -> None:
        assert set(HOLD_ALIASES.values()) == set(HOLDS)

    @pytest.mark.parametrize("aliases", [STAGE_ALIASES, HOLD_ALIASES], ids=["stages", "holds"])
    def test_aliases_that_fold_together_agree(self, aliases: dict[str, str]) -> None:
        seen: dict[str, str] = {}
        for alias, target in aliases.items():
            assert seen.setdefault(_fold(alias), target) == target, alias

    def test_no_word_is_both_a_stage_and_a_hold(self) -> None:
        stage_words = {_fold(alias) for alias in STAGE_ALIASES}
        hold_words = {_fold(alias) for alias in HOLD_ALIASES}
        assert stage_words.isdisjoint(hold_words)

    def test_aliases_are_written_readably_for_error_messages(self) -> None:
        for alias in (*STAGE_ALIASES, *HOLD_ALIASES):
            assert alias == alias.strip().lower(), alias
            assert "_" not in alias and "  " not in alias, alias

    @given(data=st.data())
    def test_case_spaces_and_hyphens_never_change_the_answer(self, data: st.DataObject) -> None:
        alias, target = data.draw(st.sampled_from(sorted((STAGE_ALIASES | HOLD_ALIASES).items())))
        separators = data.draw(st.lists(st.sampled_from(["", " ", "-", "_", "  "]), min_size=len(alias)))
        cases = data.draw(st.lists(st.booleans(), min_size=len(alias)))
        letters = [ch.upper() if upper else ch for ch, upper in zip(alias, cases, strict=False)]
        typed = "".join(sep if ch in " -" else ch + sep for ch, sep in zip(letters, separators, strict=False))
        parse = parse_stage if alias in STAGE_ALIASES else parse_hold
        assert parse(typed) == target


class TestOrder:
    def test_stages_run_from_booking_to_delivery(self) -> None:
        assert STAGES == (
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

    def test_holds(self) -> None:
        assert HOLDS == ("inspection", "kebs", "docs", "agency", "amend")

    def test_stage_index_follows_the_tuple(self) -> None:
        assert [stage_index(stage) for stage in STAGES] == list(range(len(STAGES)))

    @pytest.mark.parametrize("word", ["", "landed", "In_Transit", "inspection"])
    def test_stage_index_refuses_anything_but_a_canonical_stage(self, word: str) -> None:
        with pytest.raises(ValueError, match="unknown stage"):
            stage_index(word)

    @pytest.mark.parametrize(
        ("stage", "released"),
        [
            ("booked", False),
            ("in_transit", False),
            ("arrived", False),
            ("declared", False),
            ("assessed", False),
            ("paid", False),
            ("released", True),
            ("collected", True),
            ("delivered", True),
        ],
    )
    def test_is_released_from_the_release_message_onwards(self, stage: str, released: bool) -> None:
        assert is_released(stage) is released
