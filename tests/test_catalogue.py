"""The text catalogue: complete in both languages, consistent placeholders, safe wording about payment."""

from __future__ import annotations

import re
import string
import subprocess
import sys
import tomllib
from importlib import resources

import pytest

from handlers import catalogue
from handlers.catalogue import LANGUAGES, keys, text
from handlers.stages import HOLDS, STAGES

FIELDS = ("title", "meaning", "next", "action")

# What each alert is formatted with. The dispatcher passes exactly these names.
ALERT_PLACEHOLDERS = {
    "alert.released": {"ref_label"},
    "alert.hold_raised": {"ref_label", "hold_title", "hold_meaning", "hold_action"},
    "alert.hold_cleared": {"ref_label", "hold_title"},
    "alert.stage_changed": {"ref_label", "stage_title", "stage_meaning", "stage_action"},
    "alert.maintenance_announced": {"window"},
    "alert.maintenance_reminder": {"window"},
    "alert.maintenance_started": {"until"},
    "alert.maintenance_ended": set(),
    "alert.maintenance_cancelled": {"window"},
    "alert.footer_stop": set(),
}

# Words that talk about paying, and the two parts of the safety line (official e-slip channels; never a
# personal number) that must come with them.
PAYING = {"en": re.compile(r"\bpa(y|id|ying|yment)\b", re.I), "sw": re.compile(r"lip[aw]|malipo", re.I)}
SAFETY = {"en": ("e-slip", "personal"), "sw": ("e-slip", "mtu binafsi")}


def _raw(key: str, lang: str) -> str:
    return catalogue._entries()[key][lang]


def _placeholders(template: str) -> set[str]:
    return {field for _, field, _, _ in string.Formatter().parse(template) if field is not None}


def _group(key: str) -> str:
    """stage.X.title and its siblings are read together; any other key stands alone."""
    section, *rest = key.split(".")
    return f"{section}.{rest[0]}" if section in ("stage", "hold") else key


def _groups() -> dict[str, list[str]]:
    groups: dict[str, list[str]] = {}
    for key in VOICED_KEYS:
        groups.setdefault(_group(key), []).append(key)
    return groups


ALL_KEYS = keys()
# The sections written to the voice rules below. Conversation replies (added later) are checked for
# completeness and placeholders only; the conversation appends safety.payment itself.
VOICED = ("safety.", "stage.", "hold.", "alert.")
VOICED_KEYS = [key for key in ALL_KEYS if key.startswith(VOICED)]


class TestCompleteness:
    @pytest.mark.parametrize("key", ALL_KEYS)
    def test_every_key_has_every_language_and_none_is_empty(self, key: str) -> None:
        wordings = catalogue._entries()[key]
        assert set(wordings) == set(LANGUAGES)
        for lang in LANGUAGES:
            assert wordings[lang].strip(), f"{key} [{lang}] is empty"

    @pytest.mark.parametrize("key", ALL_KEYS)
    def test_placeholders_are_the_same_in_both_languages(self, key: str) -> None:
        english = _placeholders(_raw(key, "en"))
        for lang in LANGUAGES:
            assert _placeholders(_raw(key, lang)) == english, f"{key} [{lang}]"

    @pytest.mark.parametrize("key", ALL_KEYS)
    def test_placeholders_are_named(self, key: str) -> None:
        for lang in LANGUAGES:
            for name in _placeholders(_raw(key, lang)):
                assert name.isidentifier(), f"{key} [{lang}] has placeholder {{{name}}}"

    @pytest.mark.parametrize("section", ["stage", "hold"])
    def test_every_stage_and_hold_has_title_meaning_next_and_action(self, section: str) -> None:
        names = STAGES if section == "stage" else HOLDS
        expected = {f"{section}.{name}.{field}" for name in names for field in FIELDS}
        actual = {key for key in ALL_KEYS if key.startswith(f"{section}.")}
        assert actual == expected

    @pytest.mark.parametrize(("key", "names"), sorted(ALERT_PLACEHOLDERS.items()))
    def test_alerts_take_the_values_the_dispatcher_passes(self, key: str, names: set[str]) -> None:
        assert _placeholders(_raw(key, "en")) == names

    def test_no_alert_is_left_out_of_the_contract(self) -> None:
        assert {key for key in ALL_KEYS if key.startswith("alert.")} == set(ALERT_PLACEHOLDERS)


class TestPaymentSafety:
    @pytest.mark.parametrize("lang", LANGUAGES)
    def test_the_safety_line_exists_on_its_own(self, lang: str) -> None:
        line = text("safety.payment", lang)
        for part in SAFETY[lang]:
            assert part in line

    @pytest.mark.parametrize("lang", LANGUAGES)
    @pytest.mark.parametrize("key", ["stage.assessed.action", "stage.paid.action"])
    def test_the_payment_stages_say_how_duty_is_paid(self, key: str, lang: str) -> None:
        for part in SAFETY[lang]:
            assert part in text(key, lang), f"{key} [{lang}] lacks {part!r}"

    @pytest.mark.parametrize("lang", LANGUAGES)
    @pytest.mark.parametrize("group", sorted(_groups()))
    def test_whatever_talks_about_paying_carries_the_safety_line(self, group: str, lang: str) -> None:
        wording = " ".join(_raw(key, lang) for key in _groups()[group])
        if PAYING[lang].search(wording):
            for part in SAFETY[lang]:
                assert part in wording, f"{group} [{lang}] talks about paying without {part!r}"

    @pytest.mark.parametrize("lang", LANGUAGES)
    @pytest.mark.parametrize("stage", ["assessed", "paid"])
    def test_a_stage_alert_about_paying_carries_the_safety_line(self, stage: str, lang: str) -> None:
        values = {f"stage_{field}": text(f"stage.{stage}.{field}", lang) for field in FIELDS}
        alert = text("alert.stage_changed", lang, ref_label="Container MAEU1234567 (Maersk)", **values)
        for part in SAFETY[lang]:
            assert part in alert

    def test_the_check_above_sees_payment_where_it_is(self) -> None:
        assert PAYING["en"].search(text("stage.assessed.title", "en"))
        assert PAYING["sw"].search(text("stage.assessed.title", "sw"))
        assert not PAYING["en"].search(text("hold.kebs.meaning", "en"))


class TestVoice:
    @pytest.mark.parametrize("lang", LANGUAGES)
    @pytest.mark.parametrize("key", [k for k in VOICED_KEYS if k.endswith(".title")])
    def test_titles_read_after_a_dash(self, key: str, lang: str) -> None:
        title = text(key, lang)
        first_word = title.split()[0]
        assert title[0].islower() or first_word.isupper(), f"{key} [{lang}]: {title!r}"
        assert not title.endswith("."), f"{key} [{lang}]"

    @pytest.mark.parametrize("lang", LANGUAGES)
    @pytest.mark.parametrize("key", [k for k in VOICED_KEYS if not k.endswith(".title")])
    def test_texts_are_whole_short_sentences(self, key: str, lang: str) -> None:
        wording = _raw(key, lang)
        assert wording == wording.strip() and "  " not in wording and "\n" not in wording
        assert wording.endswith((".", "}")), f"{key} [{lang}] should end a sentence"
        for sentence in re.split(r"(?<=[.?!])\s+", wording):
            assert len(sentence.split()) <= 25, f"{key} [{lang}]: long sentence {sentence!r}"

    @pytest.mark.parametrize("stage", STAGES)
    def test_every_stage_says_what_the_customer_must_do(self, stage: str) -> None:
        for lang in LANGUAGES:
            assert len(text(f"stage.{stage}.action", lang).split()) >= 3


class TestLookup:
    def test_text_fills_in_values(self) -> None:
        got = text("alert.released", "en", ref_label="Container MAEU1234567 (Maersk)")
        assert got.startswith(
            "Good news: Container MAEU1234567 (Maersk) — KRA (Kenya Revenue Authority) has issued"
        )
        assert "{" not in got

    def test_a_hold_alert_reads_as_one_message(self) -> None:
        values = {
            f"hold_{field}": text(f"hold.kebs.{field}", "sw") for field in ("title", "meaning", "action")
        }
        got = text("alert.hold_raised", "sw", ref_label="Kontena MAEU1234567 (Maersk)", **values)
        assert got.startswith("Kontena MAEU1234567 (Maersk) sasa inazuiliwa: uhakiki wa KEBS. KEBS (")

    def test_kiswahili_is_its_own_wording(self) -> None:
        assert text("stage.assessed.title", "sw") == "ushuru umekadiriwa, inasubiri malipo"
        assert text("stage.assessed.title", "en") == "duty assessed, waiting for payment"

    @pytest.mark.parametrize("lang", ["fr", "", "xx-YY", "english"])
    def test_an_unknown_language_falls_back_to_english(self, lang: str) -> None:
        assert text("stage.released.title", lang) == text("stage.released.title", "en")

    @pytest.mark.parametrize("lang", ["SW", "sw-KE", "sw_TZ", " sw "])
    def test_language_codes_are_read_loosely(self, lang: str) -> None:
        assert text("stage.released.title", lang) == "imeruhusiwa na forodha"

    def test_an_unknown_key_raises_key_error(self) -> None:
        with pytest.raises(KeyError, match="stage.teleported.title"):
            text("stage.teleported.title", "en")

    def test_a_missing_value_raises_key_error_naming_it(self) -> None:
        with pytest.raises(KeyError, match="ref_label"):
            text("alert.released", "en")

    def test_extra_values_are_ignored(self) -> None:
        assert text("alert.footer_stop", "en", ref_label="x") == "Reply STOP to stop these messages."

    def test_values_are_not_read_as_templates(self) -> None:
        got = text("alert.released", "en", ref_label="{hold_title} {0}")
        assert "{hold_title} {0}" in got

    def test_keys_are_sorted_leaves(self) -> None:
        assert ALL_KEYS == sorted(ALL_KEYS)
        assert "safety.payment" in ALL_KEYS
        assert "stage.assessed.title" in ALL_KEYS
        assert "stage.assessed" not in ALL_KEYS


class TestLoading:
    def test_the_toml_ships_as_package_data(self) -> None:
        assert resources.files("handlers").joinpath("catalogue.toml").is_file()

    def test_importing_reads_nothing(self) -> None:
        probe = "import handlers.catalogue as c; print(c._entries.cache_info().currsize)"
        done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
        assert done.stdout.strip() == "0"

    def test_both_key_spellings_mean_the_same(self) -> None:
        document = tomllib.loads('[a.b]\nen.c = "one"\nsw.c = "moja"\n[d]\nen = "two"\nsw = "mbili"\n')
        assert catalogue._flatten(document) == {
            "a.b.c": {"en": "one", "sw": "moja"},
            "d": {"en": "two", "sw": "mbili"},
        }

    @pytest.mark.parametrize(
        ("source", "problem"),
        [
            ('[a]\nb = "no language"\n', "not under a language"),
            ("[a]\nen.b = 3\n", "must be a string"),
            ('[a]\nen.sw = "x"\n', "nested"),
            ('[a]\nen.b = "x"\n[a.b]\nen = "y"\n', "defined twice"),
            ('en = "x"\n', "no key"),
        ],
    )
    def test_a_misplaced_text_is_refused(self, source: str, problem: str) -> None:
        with pytest.raises(ValueError, match=problem):
            catalogue._flatten(tomllib.loads(source))
