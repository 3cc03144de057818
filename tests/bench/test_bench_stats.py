"""The pure parts of im-bench: percentiles, pacing, pairing and splitting."""

from __future__ import annotations

import math

import pytest

from im.bench.stats import due_count, partners, percentile, scheduled_time, split_counts, summarize


def test_percentile_is_nearest_rank() -> None:
    values = list(range(1, 101))
    assert percentile(values, 50) == 50
    assert percentile(values, 99) == 99
    assert percentile(values, 100) == 100
    assert percentile(values, 0) == 1
    assert percentile([7.0], 99.9) == 7.0


def test_percentile_of_nothing_is_nan_and_bad_percent_is_refused() -> None:
    assert math.isnan(percentile([], 50))
    with pytest.raises(ValueError):
        percentile([1.0], 101)


def test_summary_sorts_and_reports_every_field() -> None:
    summary = summarize([5.0, 1.0, 3.0, 2.0, 4.0])
    assert (summary.count, summary.p50, summary.max, summary.mean) == (5, 3.0, 5.0, 3.0)
    assert summary.p99 == 5.0
    assert summary.as_dict()["p50"] == 3.0


def test_empty_summary_serialises_as_nulls() -> None:
    assert summarize([]).as_dict() == {"count": 0, "mean": None, "p50": None, "p90": None, "p99": None,
                                       "p999": None, "max": None}


def test_pacing_spreads_messages_evenly_from_the_start() -> None:
    assert due_count(100.0, 1000.0, 99.9, 50) == 0
    assert due_count(100.0, 1000.0, 100.0, 50) == 1  # the first message is due at the start
    assert due_count(100.0, 1000.0, 100.0105, 50) == 11
    assert due_count(100.0, 1000.0, 200.0, 50) == 50  # never more than the total
    assert scheduled_time(10, 100.0, 1000.0) == pytest.approx(100.01)


def test_pacing_schedule_agrees_with_due_count() -> None:
    rate, start = 5000.0, 1.0
    for index in range(0, 20000, 997):
        at = scheduled_time(index, start, rate)
        assert due_count(start, rate, at + 1e-9, 10**6) == index + 1


def test_pacing_needs_a_positive_rate() -> None:
    with pytest.raises(ValueError):
        due_count(0.0, 0.0, 1.0, 10)


@pytest.mark.parametrize("count", [2, 3, 4, 5, 7, 50, 51])
def test_everyone_sends_to_one_partner_and_receives_from_one(count: int) -> None:
    partner = partners(count)
    assert sorted(partner) == list(range(count))  # a permutation: each receives exactly once
    assert all(partner[i] != i for i in range(count))


def test_even_counts_pair_neighbours() -> None:
    assert partners(4) == [1, 0, 3, 2]
    assert partners(3) == [1, 2, 0]


def test_pairing_needs_two_users() -> None:
    with pytest.raises(ValueError):
        partners(1)


def test_split_counts_differ_by_at_most_one() -> None:
    assert split_counts(10, 3) == [4, 3, 3]
    assert split_counts(2, 4) == [1, 1, 0, 0]
    assert sum(split_counts(20000, 7)) == 20000
    with pytest.raises(ValueError):
        split_counts(1, 0)
