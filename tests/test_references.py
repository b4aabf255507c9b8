"""The shipment-reference recogniser: kinds, typings, typos, traps, and properties over random text."""

from __future__ import annotations

import csv
import re
import string
import time
from pathlib import Path

import phonenumbers
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from stdnum import iso6346

from handlers.references import AIRLINES, Reference, describe_kind, find_references

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus" / "references.tsv"

# A copy of shared/corpus/references.tsv, so coverage does not depend on the file being there.
CORPUS_ROWS = [
    ("CSQU3054383", "container", "CSQU3054383", "true"),
    ("csqu 305438 3", "container", "CSQU3054383", "true"),
    ("CMAU1639120", "container", "CMAU1639120", "true"),
    ("MSKU6874333", "container", "MSKU6874333", "true"),
    ("MEDU3170580", "container", "MEDU3170580", "true"),
    ("MSCU1234565", "container", "MSCU1234565", "false"),
    ("ABCU1234560", "container", "ABCU1234560", "true"),
    ("NYKU0086852", "container", "NYKU0086852", "true"),
    ("176-12345675", "awb", "17612345675", "true"),
    ("176 1234 5675", "awb", "17612345675", "true"),
    ("17612345678", "awb", "17612345678", "false"),
    ("70651234562", "awb", "70651234562", "true"),
    ("MEDUHG271461", "bl", "MEDUHG271461", "true"),
    ("MAEU203176301", "bl", "MAEU203176301", "true"),
    ("HLCUHAM2602AQGK2", "bl", "HLCUHAM2602AQGK2", "true"),
    ("EGLV143076485803", "bl", "EGLV143076485803", "true"),
    ("B/L 6259159840", "bl", "6259159840", "true"),
    ("24MBAIM400448715", "entry", "24MBAIM400448715", "true"),
    ("23NBOIM401172243", "entry", "23NBOIM401172243", "true"),
    ("26MBAIM004065737", "idf", "26MBAIM004065737", "true"),
    ("P051365947M", "kra_pin", "P051365947M", "true"),
    ("+254 712 345 678", "-", "-", "-"),
    ("0712345678", "-", "-", "-"),
    ("call me on 07487554202", "-", "-", "-"),
]

_SEPARATORS = " \t\u00a0\u202f-\u2010\u2011\u2012\u2013\u2014/.[]()"
_CONFUSED = {"O": "0", "I": "1", "L": "1"}


def _corpus_file_rows() -> list:
    if not CORPUS.exists():
        return [pytest.param(None, marks=pytest.mark.skip(reason=f"{CORPUS} is not there"), id="no-corpus")]
    with CORPUS.open(encoding="utf-8", newline="") as f:
        lines = [line for line in f if line.strip() and not line.startswith("#")]
    rows = csv.reader(lines, delimiter="\t", quoting=csv.QUOTE_NONE)
    return [pytest.param(tuple(row[:4]), id=row[0]) for row in rows]


def _assert_row(row: tuple[str, str, str, str]) -> None:
    text, kind, value, valid = row
    found = find_references(text)
    if kind == "-":
        assert found == []
        return
    assert [(r.kind, r.value, r.valid) for r in found] == [(kind, value, valid == "true")]


def _only(text: str) -> Reference:
    found = find_references(text)
    assert len(found) == 1, found
    return found[0]


def _typed_matches_value(text: str, ref: Reference) -> bool:
    """``text[span]``, compacted, is the value, apart from O/0 and I/1 confusions in digit places."""
    typed = text[ref.span[0] : ref.span[1]].translate(str.maketrans("", "", _SEPARATORS)).upper()
    return len(typed) == len(ref.value) and all(
        t == v or (v.isdigit() and _CONFUSED.get(t) == v) for t, v in zip(typed, ref.value, strict=True)
    )


class TestCorpus:
    @pytest.mark.parametrize("row", CORPUS_ROWS, ids=[r[0] for r in CORPUS_ROWS])
    def test_corpus_row_is_read_as_documented(self, row):
        _assert_row(row)

    @pytest.mark.parametrize("row", _corpus_file_rows())
    def test_shared_corpus_file_row_is_read_as_documented(self, row):
        _assert_row(row)


class TestKinds:
    @pytest.mark.parametrize(
        ("text", "kind", "value", "carrier"),
        [
            ("MSKU9070323", "container", "MSKU9070323", "Maersk"),
            ("MSCU5861630", "container", "MSCU5861630", "MSC"),
            ("CSQU3054383", "container", "CSQU3054383", None),
            ("TGHU " + "123456" + iso6346.calc_check_digit("TGHU123456"), "container", None, None),
            ("176-12345675", "awb", "17612345675", "Emirates"),
            ("706-51234562", "awb", "70651234562", "Kenya Airways"),
            ("AWB 125-12345675", "awb", "12512345675", "British Airways"),
            ("awb 999-12345675", "awb", "99912345675", None),
            ("MAEU203176301", "bl", "MAEU203176301", "Maersk"),
            ("Maersk B/L 203176301", "bl", "203176301", "Maersk"),
            ("MEDUHG271461", "bl", "MEDUHG271461", "MSC"),
            ("HLCUHAM2602AQGK2", "bl", "HLCUHAM2602AQGK2", "Hapag-Lloyd"),
            ("ONEYLHRC12345600", "bl", "ONEYLHRC12345600", "ONE"),
            ("EGLV143076485803", "bl", "EGLV143076485803", "Evergreen"),
            ("CMDULHR1234567", "bl", "CMDULHR1234567", "CMA CGM"),
            ("CMDUAMDA123456", "bl", "CMDUAMDA123456", "CMA CGM"),
            ("COSU6259159840", "bl", "COSU6259159840", "COSCO"),
            ("COSCO 6259159840", "bl", "6259159840", "COSCO"),
            ("B/L 6259159840", "bl", "6259159840", "COSCO"),
            ("OOLU2345678901", "bl", "OOLU2345678901", "OOCL"),
            ("ZIMULON1234", "bl", "ZIMULON1234", "ZIM"),
            ("ZIMULON12345678", "bl", "ZIMULON12345678", "ZIM"),
            ("YMLUE123456789", "bl", "YMLUE123456789", "Yang Ming"),
            ("YMLUW123456789", "bl", "YMLUW123456789", "Yang Ming"),
            ("HDMULOND1234567", "bl", "HDMULOND1234567", "HMM"),
            ("HDMULOND12345678", "bl", "HDMULOND12345678", "HMM"),
            ("24MBAIM400448715", "entry", "24MBAIM400448715", None),
            ("25EMKEX112345678", "entry", "25EMKEX112345678", None),
            ("25XYZIM912345678", "entry", "25XYZIM912345678", None),  # any office: no list
            ("26MBAIM004065737", "idf", "26MBAIM004065737", None),
            ("P051365947M", "kra_pin", "P051365947M", None),
            ("A004416331M", "kra_pin", "A004416331M", None),
        ],
    )
    def test_each_kind_is_recognised_with_its_carrier(self, text, kind, value, carrier):
        ref = _only(text)
        assert (ref.kind, ref.value, ref.valid, ref.carrier) == (
            kind,
            value or text.replace(" ", ""),
            True,
            carrier,
        )

    @pytest.mark.parametrize(
        ("text", "value"),
        [
            ("MAEU2031763012", None),  # one digit too many for any shape
            ("MEDU31705800", "MEDU31705800"),  # MSC: MEDU + 2 alnum + 6 digits, not a container
            ("MEDU3170580", "MEDU3170580"),
            ("HLCU HAMBURGSHIPS", None),  # twelve letters are no Hapag-Lloyd B/L
            ("MAEU 203176 301", "MAEU203176301"),  # not a container missing its check digit
        ],
    )
    def test_container_and_bill_of_lading_are_told_apart_by_shape(self, text, value):
        found = find_references(text)
        assert [r.value for r in found] == ([value] if value else [])
        if value == "MEDU3170580":
            assert found[0].kind == "container"
        elif value:
            assert found[0].kind == "bl"


class TestTypings:
    @pytest.mark.parametrize(
        ("text", "value"),
        [
            ("MEDU 317058 [0]", "MEDU3170580"),
            ("msku-907032-3", "MSKU9070323"),
            ("mscu 586 163 0", "MSCU5861630"),
            ("MSKU.907032.3", "MSKU9070323"),
            ("MSKU/907032/3", "MSKU9070323"),
            ("(MSKU 907032 3)", "MSKU9070323"),
            ("MSKU 907032 (3)", "MSKU9070323"),
            ("MSKU - 907032 - 3", "MSKU9070323"),
            ("MSKU\u00a0907032\u00a03", "MSKU9070323"),
            ("MSKU 907032\u20133", "MSKU9070323"),
            ("awb 176 1234 5675", "17612345675"),
            ("176.1234.5675", "17612345675"),
            ("176/12345675", "17612345675"),
            ("AWB176-12345675", "17612345675"),
            ("AWB: 176 12345675", "17612345675"),
            ("entry no. 26mbaim406532497", "26MBAIM406532497"),
            ("24 MBA IM4 0044 8715", "24MBAIM400448715"),
            ("MAEU 203 176 301", "MAEU203176301"),
            ("EGLV 1430 7648 5803", "EGLV143076485803"),
            ("medu-hg-271461", "MEDUHG271461"),
            ("p051365947m", "P051365947M"),
            ("BL6259159840", "6259159840"),
            ("B/L6259159840", "6259159840"),
        ],
    )
    def test_separators_and_case_are_normalised_away(self, text, value):
        ref = _only(text)
        assert ref.value == value
        assert ref.valid
        assert _typed_matches_value(text, ref)

    @pytest.mark.parametrize(
        "text",
        [
            "MSKU9070323",
            "📦MSKU9070323✅",
            "\nMSKU9070323\n",
            "«MSKU9070323»",
            "(MSKU9070323).",
            "ref: MSKU9070323!!",
            "#MSKU9070323",
            "MSKU9070323 20ft",
            "MSKU9070323 2 pcs",
        ],
    )
    def test_punctuation_emoji_and_newlines_around_a_reference_do_not_matter(self, text):
        assert _only(text).value == "MSKU9070323"

    @pytest.mark.parametrize("text", ["xMSKU9070323", "MSKU9070323x", "9MSKU9070323", "ABC17612345675"])
    def test_a_reference_glued_to_other_letters_or_digits_is_not_read(self, text):
        assert find_references(text) == []


class TestSeveralReferences:
    def test_references_come_in_order_of_appearance_with_their_spans(self):
        text = (
            "Containers MSKU9070323, medu 317058 [0] and AWB 176-1234 5675;\n"
            "entry 24MBAIM400448715, B/L MEDUHG271461 🙏 PIN P051365947M"
        )
        found = find_references(text)
        assert [(r.kind, r.value) for r in found] == [
            ("container", "MSKU9070323"),
            ("container", "MEDU3170580"),
            ("awb", "17612345675"),
            ("entry", "24MBAIM400448715"),
            ("bl", "MEDUHG271461"),
            ("kra_pin", "P051365947M"),
        ]
        assert [text[r.span[0] : r.span[1]] for r in found] == [
            "MSKU9070323",
            "medu 317058 [0",
            "176-1234 5675",
            "24MBAIM400448715",
            "MEDUHG271461",
            "P051365947M",
        ]
        assert all(_typed_matches_value(text, r) for r in found)

    def test_a_repeated_reference_is_returned_once_at_its_first_place(self):
        text = "MSKU9070323 is late. msku 907032-3 please! And 176-12345675, AWB 17612345675"
        found = find_references(text)
        assert [r.value for r in found] == ["MSKU9070323", "17612345675"]
        assert found[0].span == (0, 11)
        assert text[found[1].span[0] : found[1].span[1]] == "176-12345675"

    @pytest.mark.parametrize(
        ("text", "values"),
        [
            ("17612345675 70651234562", ["17612345675", "70651234562"]),
            ("176-12345675/706-51234562", ["17612345675", "70651234562"]),
            ("12/03/2024 17612345675", ["17612345675"]),
            ("AWB 176-12345675 2 pcs 40 kg", ["17612345675"]),
            ("MSKU9070323/MSCU5861630", ["MSKU9070323", "MSCU5861630"]),
            ("+254 712 345 678 17612345675", ["17612345675"]),
        ],
    )
    def test_a_run_of_numbers_is_split_into_the_references_it_holds(self, text, values):
        assert [r.value for r in find_references(text)] == values


class TestTypos:
    @pytest.mark.parametrize(
        ("text", "value"),
        [
            ("CSQU3O54383", "CSQU3054383"),
            ("csqu3o54383", "CSQU3054383"),
            ("MSKU9O7O323", "MSKU9070323"),
            ("MSCUI234566", "MSCU1234566"),
            ("MSKU907O323", "MSKU9070323"),
            ("CMAUl639120", "CMAU1639120"),
            ("CMAU163912O", "CMAU1639120"),
            ("706-5I234562", "70651234562"),
            ("706-5l234562", "70651234562"),
        ],
    )
    def test_an_o_or_i_confusion_alone_is_corrected_and_valid(self, text, value):
        ref = _only(text)
        assert (ref.value, ref.valid, ref.suggestion) == (value, True, None)

    @pytest.mark.parametrize(
        ("text", "value", "suggestion"),
        [
            ("CSQU305438", "CSQU305438", "CSQU3054383"),
            ("MSKU 907032", "MSKU907032", "MSKU9070323"),
            ("CSQU3O5438", "CSQU305438", "CSQU3054383"),
            ("MSKU907032 I think", "MSKU907032", "MSKU9070323"),
        ],
    )
    def test_a_container_missing_its_check_digit_is_invalid_with_the_completed_number(
        self, text, value, suggestion
    ):
        ref = _only(text)
        assert (ref.kind, ref.value, ref.valid, ref.suggestion) == ("container", value, False, suggestion)

    @pytest.mark.parametrize(
        ("text", "kind", "value", "suggestion"),
        [
            ("MSCU1234565", "container", "MSCU1234565", "MSCU1234566"),
            ("CSQU3054384", "container", "CSQU3054384", "CSQU3054383"),
            ("ABCU 123456 1", "container", "ABCU1234561", "ABCU1234560"),
            ("mscu 586 163 1", "container", "MSCU5861631", "MSCU5861630"),
            ("17612345678", "awb", "17612345678", "17612345675"),
            ("AWB 706-51234563", "awb", "70651234563", "70651234562"),
            ("awb 07487554203", "awb", "07487554203", "07487554202"),
        ],
    )
    def test_a_wrong_check_digit_is_reported_invalid_with_the_corrected_number(
        self, text, kind, value, suggestion
    ):
        ref = _only(text)
        assert (ref.kind, ref.value, ref.valid, ref.suggestion) == (kind, value, False, suggestion)

    def test_a_valid_reference_has_no_suggestion(self):
        assert all(r.suggestion is None for r in find_references("MSKU9070323 176-12345675 MAEU203176301"))


class TestNotReferences:
    @pytest.mark.parametrize(
        "text",
        [
            "+254 712 345 678",
            "+254712345678",
            "254 712 345 678",
            "(+254) 712-345-678",
            "00254 712 345 678",
            "0712345678",
            "0712 345 678",
            "0722 000 000",
            "0722-000-000",
            "020 2012345",
            "+44 20 7946 0000",
            "+447487554202",
            "+44 7487 554202",
            "0044 20 7946 0000",
            "020 7946 0000",  # London; 020 is also Lufthansa's AWB prefix
            "07487554202",  # passes the AWB check with KLM's 074
            "07487 554202",
            "call me on 07487554202",
            "whatsapp 074-87554202",
            "Tel: 020 7946 0000",
            "my number is 07487554202",
            "namba yangu ni 0712 345 678",
            "Nipigie simu 0722000000",
            "phone 0712345678 or 0722 000 000",
        ],
    )
    def test_kenyan_and_uk_phone_numbers_are_not_references(self, text):
        assert find_references(text) == []

    @pytest.mark.parametrize(
        ("text", "value", "carrier"),
        [
            ("AWB 07487554202", "07487554202", "KLM"),
            ("awb number 07487554202", "07487554202", "KLM"),
            ("call me about AWB 07487554202", "07487554202", "KLM"),
            ("air waybill 074 8755 4202", "07487554202", "KLM"),
            ("074-12345675", "07412345675", "KLM"),
        ],
    )
    def test_the_word_awb_right_before_a_phone_shaped_number_makes_it_an_awb(self, text, value, carrier):
        ref = _only(text)
        assert (ref.kind, ref.value, ref.valid, ref.carrier) == ("awb", value, True, carrier)

    @pytest.mark.parametrize(
        "text",
        [
            "KES 1,250,000",
            "£450.00",
            "Ksh 12,500.50 paid",
            "USD 1250",
            "£1,250.00 for 2 x 40ft",
            "KES 176 123 456 75",
            "12/03/2024",
            "2024-03-12 10:30",
            "on 17.05.2025 at 10 pm",
            "Saturday, May 17, 2025, at 10 pm to Sunday, May 18, 2025, at 6 am",
            "12/03/2024 10.30",
            "20250517 2200",
            "e-slip 2024123456789012",
            "e-slip no. 2024 1234 5678 9012",
            "slip 1234567890123456",
            "payment 1234567890123456",
            "invoice INV-2024-00123",
            "invoice no 123456789",
            "Invoice 1234567890",
            "inv 17612345675",
            "receipt 70651234562",
            "123456789",  # a bare nine digits: a Maersk B/L only when the text says so
            "6259159840",  # a bare ten digits: a COSCO B/L only when the text says so
            "12312345675",  # eleven digits, no airline prefix we know, no AWB word
            "yetu 200 000",  # a Kiswahili word ending in u, then an amount: not a container
            "watu 100 000 wamefika",
            "HLCU is not working",
        ],
    )
    def test_amounts_dates_slips_and_invoices_are_not_references(self, text):
        assert find_references(text) == []


class TestLetterDigitSlipsInShapeOnlyKinds:
    """An O for a 0 or an I/l for a 1 in the digit block of an entry, IDF or B/L is the only
    defect: the reference comes back corrected and valid, as a container's does."""

    @pytest.mark.parametrize(
        ("text", "kind", "value"),
        [
            ("entry 24MBAIM4OO448715 please", "entry", "24MBAIM400448715"),
            ("24 MBA IM 4OO448715", "entry", "24MBAIM400448715"),
            ("idf 26MBAIMO04065737", "idf", "26MBAIM004065737"),  # IMO typed for the IDF's IM0
            ("export entry 25NBOEX1OO22334I", "entry", "25NBOEX100223341"),
            ("B/L MAEU 2O3176301", "bl", "MAEU203176301"),
            ("MEDU UJ 8O4215", "bl", "MEDUUJ804215"),
            ("EGLV 1234567890l2", "bl", "EGLV123456789012"),
            ("COSU 625915984O", "bl", "COSU6259159840"),
            ("ZIMU ABC 1234 567O", "bl", "ZIMUABC12345670"),  # a block of varying length, ending on O
            ("CMDU ABC 12345O", "bl", "CMDUABC123450"),
        ],
    )
    def test_corrected_and_valid(self, text, kind, value):
        ref = _only(text)
        assert (ref.kind, ref.value, ref.valid) == (kind, value, True)

    @pytest.mark.parametrize(
        "text",
        [
            "HLCU is not working",
            "24MBAIM OIL",
            "MAEU OIL 123",
            "30 kgs ex I 2345 6789",  # a letter stands for a digit only glued to what it follows
            "22 NBO IM I-66247707",
            "ZIMU ABC 1234oil",  # a block of varying length does not run into the word after it
        ],
    )
    def test_letters_alone_are_not_a_digit_block(self, text):
        assert find_references(text) == []


class TestKiswahili:
    @pytest.mark.parametrize(
        ("text", "values"),
        [
            ("Habari, kontena yangu MSKU 907032-3 iko wapi?", ["MSKU9070323"]),
            ("Mzigo wangu una AWB 706-51234562, umefika?", ["70651234562"]),
            ("Je, entry 24MBAIM400448715 imeruhusiwa?", ["24MBAIM400448715"]),
            ("Namba ya B/L ni 6259159840, asante", ["6259159840"]),
            ("Kontena mbili: MSKU9070323 na MEDU3170580", ["MSKU9070323", "MEDU3170580"]),
            ("Nimelipa KES 45,000 kwa e-slip 2024123456789012", []),
            ("Nipigie kwa namba 0712 345 678 tafadhali", []),
        ],
    )
    def test_kiswahili_messages(self, text, values):
        assert [r.value for r in find_references(text)] == values


class TestJobPattern:
    PATTERN = re.compile(r"\bCB[-/ ]?\d{5}\b", re.IGNORECASE)

    def test_job_numbers_are_found_with_the_forwarders_pattern(self):
        text = "Job cb-12345 and MSKU9070323"
        found = find_references(text, job_pattern=self.PATTERN)
        assert [(r.kind, r.value, r.valid) for r in found] == [
            ("job", "CB12345", True),
            ("container", "MSKU9070323", True),
        ]
        assert text[found[0].span[0] : found[0].span[1]] == "cb-12345"

    def test_without_a_pattern_there_are_no_job_references(self):
        assert find_references("Job cb-12345") == []

    def test_a_job_match_wins_over_another_reading_of_the_same_characters(self):
        found = find_references("ref 17612345675", job_pattern=re.compile(r"\d{11}"))
        assert [(r.kind, r.value) for r in found] == [("job", "17612345675")]

    def test_an_empty_job_match_is_ignored(self):
        assert find_references("MSKU9070323", job_pattern=re.compile(r"x*")) == [_only("MSKU9070323")]


class TestShape:
    def test_to_dict_is_json_ready(self):
        ref = _only("AWB 176-12345678")
        assert ref.to_dict() == {
            "kind": "awb",
            "value": "17612345678",
            "valid": False,
            "carrier": "Emirates",
            "span": [4, 16],
            "suggestion": "17612345675",
        }

    @pytest.mark.parametrize(
        ("text", "display"),
        [
            ("msku 907032 3", "MSKU9070323"),
            ("17612345675", "176-12345675"),
            ("24MBAIM400448715", "24MBAIM400448715"),
        ],
    )
    def test_display_is_the_human_form(self, text, display):
        assert _only(text).display == display

    @pytest.mark.parametrize(
        ("kind", "name"),
        [
            ("container", "Container"),
            ("awb", "Air waybill"),
            ("bl", "Bill of lading"),
            ("entry", "Customs entry"),
            ("idf", "IDF"),
            ("kra_pin", "KRA PIN"),
            ("job", "Job reference"),
        ],
    )
    def test_describe_kind_names_every_kind(self, kind, name):
        assert describe_kind(kind) == name

    def test_describe_kind_refuses_an_unknown_kind(self):
        with pytest.raises(ValueError, match="parcel"):
            describe_kind("parcel")

    def test_references_are_immutable(self):
        ref = _only("MSKU9070323")
        with pytest.raises(AttributeError):
            ref.value = "X"  # type: ignore[misc]


class TestRobustness:
    @pytest.mark.parametrize(
        "text",
        [
            "",
            " ",
            "\x00\x01\x02",
            "\ud800",
            "MSKU\x009070323",
            "ß" * 50 + "17612345675",
            "\u0660" * 11,
            "K" * 20,
        ],
    )
    def test_odd_input_never_raises(self, text):
        for ref in find_references(text):
            assert 0 <= ref.span[0] < ref.span[1] <= len(text)

    def test_unicode_digits_are_not_reference_digits(self):
        assert find_references("AWB \u0661\u0667\u0666\u0661\u0662\u0663\u0664\u0665\u0666\u0667\u0665") == []

    @pytest.mark.parametrize(
        "chunk",
        ["MSKU9070323 ", "1 ", "1-", "a", "+254 ", "AWB ", "MSKU 9 ", "0" * 50 + " ", "HLCU ", "24MBA "],
    )
    def test_a_megabyte_of_text_is_read_quickly(self, chunk):
        text = chunk * (1_000_000 // len(chunk))
        started = time.perf_counter()
        find_references(text)
        assert time.perf_counter() - started < 15  # linear: about 1 s; backtracking: minutes


# --- properties ---------------------------------------------------------------------------------

_sep = st.sampled_from(["", "", "", " ", "-", "/", ".", " - ", "[", "("])
_around = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=30)


# Pieces of references, phone numbers and noise: joined at random they make near-misses of every kind.
_fragments = st.sampled_from(
    "MSKU msku 907032 3 O I l AWB awb 176 1234 5675 B/L MAEU HLCU 24MBA IM4 00448715 P0513 65947M +254 0712 "
    "+44 call invoice - / . [ ) é ß ﬁ İ 😀 K".split()
    + [" ", "\n", "\t", "\u00a0", "\u0660", "\x00"]
)


# phonenumbers' own example for every number type Kenya and the UK have (mobile, landline, ...).
_PHONE_EXAMPLES = [
    example
    for region in ("KE", "GB")
    for kind in vars(phonenumbers.PhoneNumberType).values()
    if isinstance(kind, int) and (example := phonenumbers.example_number_for_type(region, kind)) is not None
]


def _spaced(chars: str, seps: list[str]) -> str:
    """``chars`` with ``seps[i]`` typed after character i (one fewer separator than characters)."""
    return "".join(c + s for c, s in zip(chars, [*seps, ""], strict=True))


@st.composite
def containers(draw) -> tuple[str, str]:
    """A valid container number and one way a person might type it."""
    owner = draw(st.text(alphabet=string.ascii_uppercase, min_size=3, max_size=3)) + draw(
        st.sampled_from("UJZ")
    )
    serial = draw(st.text(alphabet="0123456789", min_size=6, max_size=6))
    value = owner + serial + iso6346.calc_check_digit(owner + serial)
    seps = [""] * 3 + draw(st.lists(_sep, min_size=7, max_size=7))
    typed = _spaced(value, seps)
    return value, typed.lower() if draw(st.booleans()) else typed


@st.composite
def awbs(draw, prefixes=st.text(alphabet="0123456789", min_size=3, max_size=3)) -> tuple[str, str]:
    """A valid air waybill and a typing of it with random separators."""
    prefix = draw(prefixes)
    serial = draw(st.text(alphabet="0123456789", min_size=7, max_size=7))
    value = prefix + serial + str(int(serial) % 7)
    return value, _spaced(value, draw(st.lists(_sep, min_size=10, max_size=10)))


class TestProperties:
    @settings(max_examples=200, deadline=None)
    @given(containers(), _around, _around)
    def test_a_valid_container_in_random_text_is_found(self, container, before, after):
        value, typed = container
        text = f"{before}\n{typed}\n{after}"
        found = [r for r in find_references(text) if r.value == value]
        assert found and found[0].kind == "container" and found[0].valid
        assert _typed_matches_value(text, found[0])

    @settings(max_examples=200, deadline=None)
    @given(awbs(), _around, _around)
    def test_a_valid_awb_after_the_word_awb_in_random_text_is_found(self, awb, before, after):
        value, typed = awb
        text = f"{before}\nAWB {typed}\n{after}"
        found = [r for r in find_references(text) if r.value == value]
        assert found and found[0].kind == "awb" and found[0].valid
        assert found[0].carrier == AIRLINES.get(value[:3])

    @settings(max_examples=200, deadline=None)
    @given(awbs(st.sampled_from(sorted(p for p in AIRLINES if p[0] != "0"))), _around)
    def test_a_bare_valid_awb_with_a_known_airline_is_found(self, awb, after):
        value, typed = awb
        found = [r for r in find_references(f"{typed}\n{after}") if r.value == value]
        assert found and found[0].kind == "awb" and found[0].valid

    @settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(st.one_of(st.text(max_size=300), st.lists(_fragments, max_size=40).map("".join)))
    def test_any_text_never_raises_and_spans_are_inside_it(self, text):
        found = find_references(text)
        assert len({r.value for r in found}) == len(found)
        assert [r.span[0] for r in found] == sorted(r.span[0] for r in found)
        for ref in found:
            assert 0 <= ref.span[0] < ref.span[1] <= len(text)
            assert isinstance(ref.valid, bool)
            assert ref.kind in {"container", "awb", "bl", "entry", "idf", "kra_pin"}
            assert _typed_matches_value(text, ref)

    @settings(max_examples=200, deadline=None)
    @given(
        st.sampled_from(_PHONE_EXAMPLES),
        st.text(alphabet="0123456789", min_size=0, max_size=6),
        st.sampled_from(
            [
                phonenumbers.PhoneNumberFormat.E164,
                phonenumbers.PhoneNumberFormat.INTERNATIONAL,
                phonenumbers.PhoneNumberFormat.NATIONAL,
            ]
        ),
        st.sampled_from(
            ["", "call me on ", "my number is ", "whatsapp ", "namba yangu ni ", "Tel: ", "Hi, "]
        ),
        st.sampled_from(["", ".", " thanks", "!", " 🙏"]),
    )
    def test_no_kenyan_or_uk_phone_number_is_a_reference(self, example, tail_digits, fmt, before, after):
        national = str(example.national_number)
        if tail_digits:  # a random valid number of the same type: the example with other last digits
            national = national[: -len(tail_digits)] + tail_digits
        number = phonenumbers.PhoneNumber(country_code=example.country_code, national_number=int(national))
        assume(phonenumbers.is_valid_number(number))
        text = before + phonenumbers.format_number(number, fmt) + after
        assert find_references(text) == [], text
