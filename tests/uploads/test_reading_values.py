"""Reading one value by a reading profile, detecting profiles, cleaning text, encodings."""

from __future__ import annotations

import polars as pl
import pytest

from server.modules.uploads.normalise import cleaned_text
from server.modules.uploads.parsing import detect_encoding
from server.modules.uploads.profile import (
    ReadingProfile,
    Unreadable,
    detect_profile,
    read_date,
    read_number,
)

DOT = ReadingProfile(decimal=".", thousands=",")
COMMA = ReadingProfile(decimal=",", thousands=".")
UNSETTLED = ReadingProfile()


@pytest.mark.parametrize(("text", "profile", "expected", "kinds"), [
    ("1,234.50", UNSETTLED, "1234.50", {"thousands"}),
    ("$85,000.50", UNSETTLED, "85000.50", {"thousands", "currency"}),
    ("(150,000.00)", UNSETTLED, "-150000.00", {"thousands", "parenthesised_negative"}),
    ("150-", UNSETTLED, "-150", {"trailing_minus"}),
    ("12%", UNSETTLED, "0.12", {"percent"}),
    ("12.5 %", UNSETTLED, "0.125", {"percent"}),
    ("-5%", UNSETTLED, "-0.05", {"percent"}),
    ("33.333333%", UNSETTLED, "0.33333333", {"percent"}),
    ("0.5%", UNSETTLED, "0.005", {"percent"}),
    ("1.234,50", UNSETTLED, "1234.50", {"thousands", "decimal_comma"}),
    ("1 234,50", UNSETTLED, "1234.50", {"thousands", "decimal_comma"}),
    ("EUR 1.234,50", COMMA, "1234.50", {"thousands", "decimal_comma", "currency"}),
    ("1.234", COMMA, "1234", {"thousands"}),
    ("1,234", DOT, "1234", {"thousands"}),
    ("1,234", COMMA, "1.234", {"decimal_comma"}),
    ("12,5", UNSETTLED, "12.5", {"decimal_comma"}),
    ("1'234.50", UNSETTLED, "1234.50", {"thousands"}),
    ("-$1,000.00", UNSETTLED, "-1000.00", {"thousands", "currency"}),
    ("85000 USD", UNSETTLED, "85000", {"currency"}),
    ("£ 1,000,000", UNSETTLED, "1000000", {"thousands", "currency"}),
])
def test_numbers_are_read_exactly(text, profile, expected, kinds) -> None:
    read, found, _ = read_number(text, profile)
    assert (read, found) == (expected, kinds)


@pytest.mark.parametrize(("text", "profile", "rule"), [
    ("1,234", UNSETTLED, "ambiguous_number"),
    ("(1.234)", UNSETTLED, "ambiguous_number"),
    ("1.234.567", DOT, "mixed_separators"),
    ("1.5", COMMA, "mixed_separators"),
    ("12 apples", UNSETTLED, "type"),
    ("1.2.3", UNSETTLED, "type"),
])
def test_numbers_that_would_need_a_guess_are_refused(text, profile, rule) -> None:
    with pytest.raises(Unreadable) as caught:
        read_number(text, profile)
    assert caught.value.rule == rule and caught.value.hint


@pytest.mark.parametrize(("text", "order", "expected", "kinds", "settles"), [
    ("31/12/2025", None, "2025-12-31", {"date_format"}, "dmy"),
    ("12/31/2025", None, "2025-12-31", {"date_format"}, "mdy"),
    ("03/04/2025", "dmy", "2025-04-03", {"date_format"}, None),
    ("03/04/2025", "mdy", "2025-03-04", {"date_format"}, None),
    ("05.05.2025", None, "2025-05-05", {"date_format"}, None),
    ("2025-12-31 00:00:00", None, "2025-12-31", {"midnight_time"}, None),
    ("2025-12-31T00:00", None, "2025-12-31", {"midnight_time"}, None),
    ("31/12/2025 00:00", None, "2025-12-31", {"date_format", "midnight_time"}, "dmy"),
    ("2025/3/1", None, "2025-03-01", {"date_format"}, None),
    ("45657", None, "2024-12-31", {"serial_date"}, None),
    ("45657.0", None, "2024-12-31", {"serial_date"}, None),
    ("31-Dec-2025", None, "2025-12-31", {"date_format"}, None),
    ("Dec 31, 2025", None, "2025-12-31", {"date_format"}, None),
])
def test_dates_are_read_with_what_settles_them(text, order, expected, kinds, settles) -> None:
    assert read_date(text, order) == (expected, kinds, settles)


@pytest.mark.parametrize(("text", "order", "rule", "words"), [
    ("03/04/2025", None, "ambiguous_date", "3 April"),
    ("2025-12-31 14:30", None, "time_of_day", "Format Cells"),
    ("31/12/2025 09:15:00", None, "time_of_day", "=INT"),
    ("31/12/25", None, "two_digit_year", "four digits"),
    ("12/31/2025", "dmy", "mixed_date_order", "mixes"),
    ("2025", None, "type", "YYYY-MM-DD"),
])
def test_dates_that_would_need_a_guess_are_refused(text, order, rule, words) -> None:
    with pytest.raises(Unreadable) as caught:
        read_date(text, order)
    assert caught.value.rule == rule
    assert words in str(caught.value) + caught.value.hint


def test_profile_is_detected_from_what_the_values_settle() -> None:
    european = detect_profile(["a", "b", "c"], [["E1", "1.234,50", "31/12/2025"],
                                                ["E2", "85.000,00", "01/02/2025"]])
    assert (european.decimal, european.thousands, european.date_order) == (",", ".", "dmy")
    assert "1.234,50" in european.decided["decimal"]
    american = detect_profile(["a", "b"], [["$1,234.50", "12/31/2025"], ["$5", "1/2/2025"]])
    assert (american.decimal, american.thousands, american.date_order) == (".", ",", "mdy")
    assert american.currencies == ["$"]
    unsettled = detect_profile(["a", "b"], [["1,234", "03/04/2025"], ["100", "05/06/2025"]])
    assert (unsettled.decimal, unsettled.date_order) == (None, None)
    mixed = detect_profile(["a"], [["31/12/2025"], ["12/31/2025"]])
    assert mixed.date_order is None and "not settled" in mixed.decided["date_order"]


@pytest.mark.parametrize(("raw", "clean"), [
    ("md ", "md"), (" FI-NYC ", "FI-NYC"), ("Trading\nDesk", "Trading Desk"),
    ("Trading \r\n Desk", "Trading Desk"), ("a\u00a0b", "a b"), ("Cre\u0301dit", "Crédit"),
    ("   ", None), ("plain", "plain"),
])
def test_text_is_cleaned(raw, clean) -> None:
    assert pl.select(cleaned_text(pl.lit(raw, dtype=pl.String))).item() == clean


@pytest.mark.parametrize(("data", "encoding"), [
    ("Name,Note\nA,It\u2019s fine \u2013 \u201cok\u201d\n".encode("cp1252"), "cp1252"),
    ("Name,Équipe\nA,Trésor\n".encode("latin-1"), "cp1252"),
    ("Name,Note\nA,é\n".encode("utf-8-sig"), "utf-8-sig"),
    ("Name,Note\nA,é\n".encode(), "utf-8"),
    ("Name,Note\nA,é\n".encode("utf-16"), "utf-16"),
    ("Name,Note\nA,b\n".encode("utf-16-le"), "utf-16-le"),
])
def test_encodings_are_detected_from_the_bytes(data, encoding) -> None:
    found, how = detect_encoding(data, True)
    assert found == encoding and how
    assert "\u0092" not in data.decode(found)
