"""Plans, slot assignment to worker processes, merging worker results, metrics parsing."""

from __future__ import annotations

import base64
from array import array
from typing import Any

from im.bench.cli import private_plan, source_addresses
from im.bench.plan import ConnSpec, Plan, SenderSpec
from im.bench.runner import assign_slots, merge
from im.bench.setup import parse_metrics
from im.bench.worker import ACKED, REJECTED, encode_array


def conns(count: int) -> list[ConnSpec]:
    return [ConnSpec(i, 100 + i, f"ws://127.0.0.1:1/ws?token=t{i}") for i in range(count)]


def test_private_plan_pairs_users_and_splits_messages() -> None:
    plan = private_plan(conns(4), 10, window=8)
    assert [(s.slot, s.to, s.recipients, s.count) for s in plan.senders] == [
        (0, 101, [1], 3), (1, 100, [0], 3), (2, 103, [3], 2), (3, 102, [2], 2)]
    assert plan.messages == 10
    assert plan.window == 8


def test_plan_survives_the_trip_to_a_worker_process() -> None:
    plan = Plan("im", conns(3), [SenderSpec(0, 5, [1, 2], group=9)], rate=100.0, window=4, ping_interval=None)
    assert Plan.from_json(plan.to_json()) == plan


def test_slots_are_assigned_in_contiguous_runs() -> None:
    assert assign_slots(list(range(10)), 3) == [[0, 1, 2], [3, 4, 5], [6, 7, 8, 9]]
    assert assign_slots([0, 1], 5) == [[0], [1]]
    assert assign_slots(list(range(4)), 1) == [[0, 1, 2, 3]]


def test_source_addresses_only_spread_on_loopback() -> None:
    assert source_addresses("http://127.0.0.1:8080", 10000, None) == [None]
    assert source_addresses("http://127.0.0.1:8080", 45000, None) == ["127.0.0.1", "127.0.0.2", "127.0.0.3"]
    assert source_addresses("http://127.0.0.1:8080", 10, 2) == ["127.0.0.1", "127.0.0.2"]
    assert source_addresses("http://10.1.2.3:8080", 45000, 4) == [None]


def result(**fields: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "sent": 0, "acked": 0, "rejected": 0, "delivered": 0, "duplicates": 0, "unexpected": 0,
        "self_echo": 0, "stray_answers": 0, "reconnects": 0, "error_codes": {}, "closed_codes": {},
        "max_lag": 0.0, "cpu_seconds": 0.0, "start": 10.0, "last_event": 10.0, "latency": "",
        "ack_latency": "",
        "status": {}, "got": {},
    }
    base.update(fields)
    return base


def test_merge_counts_a_group_message_complete_only_when_every_recipient_got_it() -> None:
    plan = Plan("im", conns(3), [SenderSpec(0, 3, [1, 2], group=7)])
    status = base64.b64encode(bytes([ACKED, ACKED, REJECTED])).decode()
    # recipients 1 and 2 live in different workers; message 1 never reached recipient 2
    first = result(sent=3, acked=2, rejected=1, status={"0": status}, last_event=11.0,
                   got={"0": encode_array(array("I", [1, 1, 0]))}, error_codes={"forbidden": 1},
                   latency=encode_array(array("d", [1.0, 2.0])))
    second = result(got={"0": encode_array(array("I", [1, 0, 0]))}, last_event=12.5, duplicates=1,
                    latency=encode_array(array("d", [3.0])))
    merged = merge(plan, [first, second])
    assert merged.complete == 1
    assert merged.missing == 1  # the rejected message is not counted missing
    assert merged.expected_deliveries == 6
    assert merged.duplicates == 1
    assert merged.wall_seconds == 2.5
    assert sorted(merged.latency) == [1.0, 2.0, 3.0]
    assert merged.error_codes == {"forbidden": 1}


def test_metrics_parser_sums_label_sets_and_skips_comments() -> None:
    text = """# HELP process_resident_memory_bytes Resident memory size in bytes.
# TYPE process_resident_memory_bytes gauge
process_resident_memory_bytes 1.2345e+08
im_errors_total{code="bad_frame"} 2.0
im_errors_total{code="odd label"} 3.0
im_errors_total_created{code="bad_frame"} 1.7e9
"""
    found = parse_metrics(text, ["process_resident_memory_bytes", "im_errors_total", "absent"])
    assert found == {"process_resident_memory_bytes": 123450000.0, "im_errors_total": 5.0}
