"""One definition of an id: positive, fits a signed 64-bit column, one canonical spelling."""

from __future__ import annotations

import pytest

from im.protocol.ids import MAX_ID, is_id, is_seq, parse_id, parse_seq


@pytest.mark.parametrize("value", [1, 42, MAX_ID])
def test_ids_in_range_are_ids(value: int) -> None:
    assert is_id(value)


@pytest.mark.parametrize("value", [0, -1, MAX_ID + 1, 10**30, True, 1.0, "1", None])
def test_other_json_values_are_not_ids(value: object) -> None:
    assert not is_id(value)


def test_a_seq_may_be_zero_but_not_negative_or_too_large() -> None:
    assert is_seq(0) and is_seq(MAX_ID)
    assert not is_seq(-1) and not is_seq(MAX_ID + 1) and not is_seq(False)


@pytest.mark.parametrize("text, expected", [("1", 1), ("9223372036854775807", MAX_ID), ("120", 120)])
def test_canonical_decimal_parses(text: str, expected: int) -> None:
    assert parse_id(text) == expected


@pytest.mark.parametrize("text", [
    "", "0", "-1", "+1", " 1", "1 ", "01", "1_0", "١", "²", "1e3", "0x10", "1\n",
    "9223372036854775808", "10000000000000000000000000000000",
])
def test_anything_else_is_refused(text: str) -> None:
    assert parse_id(text) is None


def test_a_seq_in_text_may_be_zero() -> None:
    assert parse_seq("0") == 0
    assert parse_seq("00") is None and parse_seq("-0") is None and parse_seq("9223372036854775808") is None
