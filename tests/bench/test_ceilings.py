"""`im-bench ceilings`: the pure parts, and one short run against the real servers (shape only, no timing)."""

from __future__ import annotations

import os
import shutil
import socket
from typing import Any
from urllib.parse import urlsplit

import pytest

from im.bench import ceilings
from im.bench.cli import main as bench_main
from im.contracts.envelopes import decode_uplinks, encode_uplinks


def test_rate_is_per_second_and_zero_without_time() -> None:
    assert ceilings.rate(500, 0.25) == 2000.0
    assert ceilings.rate(500, 0) == 0.0


def test_sample_uplinks_are_what_the_bus_carries() -> None:
    uplinks = ceilings.sample_uplinks(64, 10)
    assert len(uplinks) == 64
    assert all(len(u.content) == 10 and u.group is None and u.to is not None for u in uplinks)
    assert len({u.cid for u in uplinks}) == 64
    assert decode_uplinks(encode_uplinks(uplinks)) == uplinks


def test_rows_fit_the_insert_and_stay_unique_across_batches() -> None:
    first, second = ceilings.rows(500, 64), ceilings.rows(500, 64, start=500)
    placeholders = ceilings.INSERT_SQL.count("%s")
    assert all(len(row) == placeholders for row in first + second)
    keys = {(row[0], row[4]) for row in first + second}  # the (sender_id, cid) unique key
    assert len(keys) == 1000
    # every value is a parameter: executemany can only batch when VALUES holds nothing but %s
    values = ceilings.INSERT_SQL.split("VALUES", 1)[1]
    assert values.replace("%s", "").replace(",", "").replace(" ", "") == "()"


def test_parse_mysql_target() -> None:
    target = ceilings.parse_mysql_target("mysql://bench:p%40ss@db.local:3307/im_bench_1")
    assert target == ceilings.MysqlTarget("db.local", 3307, "bench", "p@ss", "im_bench_1")
    assert ceilings.parse_mysql_target("mysql://root:@127.0.0.1/x").port == 3306
    with pytest.raises(ValueError, match="needs a database"):
        ceilings.parse_mysql_target("mysql://root:@127.0.0.1:3306")
    with pytest.raises(ValueError, match="expected mysql://"):
        ceilings.parse_mysql_target("postgres://root@127.0.0.1/x")


def _report() -> dict[str, Any]:
    def side(items: float) -> dict[str, Any]:
        return {"messages_per_second": items, "items_per_second": items, "client_cpu_cores": 0.5}

    one = {"items_per_message": 1, "body_bytes": 130, "publish": side(5000.0), "consume": side(8000.0)}
    many = {"items_per_message": 64, "body_bytes": 8500, "publish": side(320000.0), "consume": side(0.0)}
    return {"rabbitmq": [one, many], "mysql": {"rows_per_second": 60000.0, "rows_per_txn": 500,
                                               "connections": 1, "transactions": 600}}


def test_ratios_per_ceiling() -> None:
    r = ceilings.ratios(_report(), 10000.0)
    assert r["ours_messages_per_second"] == 10000.0
    assert r["rabbitmq_publish_1_per_message"] == 2.0
    assert r["rabbitmq_consume_1_per_message"] == 1.25
    assert r["rabbitmq_publish_64_per_message"] == 0.031
    assert r["rabbitmq_consume_64_per_message"] is None  # a zero ceiling gives no ratio, not a crash
    assert r["mysql_messages_over_rows"] == 0.167
    assert r["mysql_rows_over_rows"] == 0.5  # 3 rows per private message
    assert r["mysql_rows_per_message"] == ceilings.ROWS_PER_PRIVATE_MESSAGE == 3


def test_ratios_without_our_number() -> None:
    assert ceilings.ratios(_report(), None) == {"ours_messages_per_second": None}


def test_format_text_names_every_ceiling() -> None:
    report = _report() | {"machine": {"nproc": 2, "python": "3.11"},
                          "host": {"cpus": 2.0, "busy_cores": 1.5, "others_cores": 0.2}}
    report["ratios"] = ceilings.ratios(report, 8000.0)
    text = ceilings.format_text(report)
    assert "1 item(s)/AMQP message" in text and "64 item(s)/AMQP message" in text
    assert "mysql 500 rows/transaction" in text and "60000 rows/s" in text
    assert "0.20 other processes" in text
    assert "rabbitmq_publish_1_per_message 1.6" in text


def test_cli_routes_ceilings_and_needs_a_server(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        bench_main(["ceilings"])
    assert exit_.value.code == 2
    assert "--rabbitmq-url" in capsys.readouterr().err


def test_parser_defaults() -> None:
    args = ceilings.build_parser().parse_args(["--mysql-url", "mysql://root:@h/db"])
    assert (args.seconds, args.rows_per_txn, args.items_per_message, args.in_flight) == (5.0, 500, None, 64)


def _reachable(url: str, port: int) -> bool:
    parts = urlsplit(url)
    try:
        socket.create_connection((parts.hostname or "127.0.0.1", parts.port or port), timeout=2).close()
    except OSError:
        return False
    return True


@pytest.mark.integration
async def test_ceilings_run_against_the_real_servers() -> None:
    from tests.support import servers

    if not (_reachable(servers.MYSQL_URL, 3306) and _reachable(servers.RABBITMQ_URL, 5672)
            and shutil.which("rabbitmqctl")):
        if os.environ.get("IM_TEST_REQUIRE_SERVERS") == "1":
            pytest.fail("MySQL or RabbitMQ (or rabbitmqctl) unavailable")
        pytest.skip("MySQL or RabbitMQ (or rabbitmqctl) unavailable")
    with servers.mysql_database() as mysql_url, servers.rabbitmq_vhost() as amqp_url:
        report = await ceilings.run_ceilings(rabbitmq_url=amqp_url, mysql_url=mysql_url, seconds=0.3,
                                             items_per_message=[1, 8], in_flight=8, prefetch=8,
                                             rows_per_txn=50, ours_per_second=1000.0)
    assert [item["items_per_message"] for item in report["rabbitmq"]] == [1, 8]
    for item in report["rabbitmq"]:
        publish, consume = item["publish"], item["consume"]
        assert publish["messages"] > 0
        assert consume["messages"] == publish["messages"]  # everything published was consumed and acked
        assert consume["items"] == publish["messages"] * item["items_per_message"]
        assert publish["items_per_second"] > 0 and consume["items_per_second"] > 0
    mysql = report["mysql"]
    assert mysql["rows"] == mysql["transactions"] * 50 > 0 and mysql["rows_per_second"] > 0
    assert {"rabbitmq_publish_1_per_message", "rabbitmq_consume_8_per_message",
            "mysql_rows_over_rows"} <= report["ratios"].keys()
    assert report["host"]["busy_cores"] >= 0
