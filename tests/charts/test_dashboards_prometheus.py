"""Every dashboard query returns data from a real Prometheus scraping a real `im serve`.

Needs the Debian `prometheus` package (`/usr/bin/prometheus`). The standalone server runs gateway and
logic in one process, so it exports every im_* metric the dashboards and the adapter rules use.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import shutil
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import websockets
import yaml

from tests.charts.chart_helpers import CHART_DIR
from tests.charts.dashboards import Query, queries
from tests.support.processes import free_port

pytestmark = pytest.mark.integration

PROMETHEUS = shutil.which("prometheus") or "/usr/bin/prometheus"
IM = str(Path(sys.executable).with_name("im"))
SCRAPE_INTERVAL_S = 1
# Labels a Kubernetes scrape (ServiceMonitor / PodMonitor) would add; the adapter rules need them.
TARGET_LABELS = {"namespace": "chat", "pod": "chat-gateway-0"}


def wait_http(url: str, process: subprocess.Popen[bytes], log: Path, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{process.args[0]} exited:\n{log.read_text(errors='replace')[-3000:]}")
        try:
            with urllib.request.urlopen(url, timeout=1) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"{url} not ready:\n{log.read_text(errors='replace')[-3000:]}")


def http_json(url: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())  # type: ignore[no-any-return]


@dataclass
class Prometheus:
    url: str

    def query(self, expr: str) -> list[dict[str, Any]]:
        params = urllib.parse.urlencode({"query": expr})
        answer = http_json(f"{self.url}/api/v1/query?{params}")
        assert answer["status"] == "success", answer
        return answer["data"]["result"]  # type: ignore[no-any-return]


def start(args: list[str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT,
                                env={**os.environ, "PYTHONUNBUFFERED": "1"})


async def chat(base: str, ws_base: str) -> None:
    """Two users exchange messages; one bad frame makes an im_errors_total{code} series."""
    tokens, ids = [], []
    stamp, password = time.time_ns(), "correct horse battery"
    for name in ("alice", "bob"):
        email = f"{name}-{stamp}@example.com"
        register = {"email": email, "password": password, "nickname": name}
        ids.append(http_json(f"{base}/api/v1/register", register)["user_id"])
        tokens.append(http_json(f"{base}/api/v1/login", {"email": email, "password": password})["token"])
    async with websockets.connect(f"{ws_base}?token={tokens[0]}") as alice, \
            websockets.connect(f"{ws_base}?token={tokens[1]}") as bob:
        for i in range(10):
            sender, recipient = (alice, ids[1]) if i % 2 == 0 else (bob, ids[0])
            await sender.send(json.dumps({"type": "send", "cid": f"c{i}", "to": recipient, "content": "hi"}))
        await alice.send("{not json")
        acks, messages, errors = 0, 0, 0
        deadline = time.monotonic() + 15
        while (acks < 10 or messages < 10 or errors < 1) and time.monotonic() < deadline:
            for ws in (alice, bob):
                try:
                    frame = json.loads(await asyncio.wait_for(ws.recv(), 0.05))
                except TimeoutError:
                    continue
                acks += frame["type"] == "ack"
                messages += frame["type"] == "msg"
                errors += frame["type"] == "error"
        assert (acks, messages, errors) == (10, 10, 1)
        # Stay connected over a few scrapes so im_gateway_connections shows them.
        await asyncio.sleep(3 * SCRAPE_INTERVAL_S)


@pytest.fixture(scope="module")
def prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Prometheus]:
    if not Path(PROMETHEUS).exists():
        pytest.skip("Prometheus is not installed: apt-get install -y prometheus")
    if not Path(IM).exists():
        pytest.fail(f"{IM} is missing: install the project into the venv")
    tmp = tmp_path_factory.mktemp("dashboards")
    im_port, metrics_port, prom_port = free_port(), free_port(), free_port()
    (tmp / "data").mkdir()
    server = start([IM, "serve", "--host", "127.0.0.1", "--port", str(im_port), "--metrics-port", str(metrics_port),
                    "--data-dir", str(tmp / "data")], tmp / "im.log")
    config = {
        "global": {"scrape_interval": f"{SCRAPE_INTERVAL_S}s",
                   "evaluation_interval": f"{SCRAPE_INTERVAL_S}s"},
        "scrape_configs": [{
            "job_name": "im",
            "metrics_path": "/metrics",
            "static_configs": [{"targets": [f"127.0.0.1:{metrics_port}"], "labels": TARGET_LABELS}],
        }],
    }
    (tmp / "prometheus.yml").write_text(yaml.safe_dump(config))
    prom = start([PROMETHEUS, f"--config.file={tmp / 'prometheus.yml'}",
                  f"--storage.tsdb.path={tmp / 'tsdb'}", f"--web.listen-address=127.0.0.1:{prom_port}",
                  "--log.level=warn"], tmp / "prometheus.log")
    try:
        wait_http(f"http://127.0.0.1:{im_port}/readyz", server, tmp / "im.log")
        wait_http(f"http://127.0.0.1:{prom_port}/-/ready", prom, tmp / "prometheus.log")
        client = Prometheus(f"http://127.0.0.1:{prom_port}")
        deadline = time.monotonic() + 30
        while not client.query('up{job="im"} == 1'):
            assert time.monotonic() < deadline, (tmp / "prometheus.log").read_text()[-3000:]
            time.sleep(0.2)
        # Traffic after the first scrape, so every counter and histogram increases inside the rate window.
        asyncio.run(chat(f"http://127.0.0.1:{im_port}", f"ws://127.0.0.1:{im_port}/ws"))
        time.sleep(2 * SCRAPE_INTERVAL_S)
        yield client
    finally:
        for process in (prom, server):
            process.terminate()
        for process in (prom, server):
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def finite(result: list[dict[str, Any]]) -> bool:
    return any(math.isfinite(float(series["value"][1])) for series in result)


@pytest.mark.parametrize("query", queries(), ids=lambda q: q.id)
def test_dashboard_query_returns_data(prometheus: Prometheus, query: Query) -> None:
    result = prometheus.query(query.expr)
    assert result, f"no series for {query.expr}"
    assert finite(result), f"only NaN / Inf for {query.expr}: {result}"


def adapter_queries() -> list[tuple[str, str]]:
    config = yaml.safe_load((CHART_DIR / "files" / "prometheus-adapter-rules.yaml").read_text())
    matchers = f'namespace="{TARGET_LABELS["namespace"]}",pod=~"{TARGET_LABELS["pod"]}"'
    found = []
    for rule in config["rules"]:
        name = rule["name"]["as"]
        # What prometheus-adapter asks for one pod of the HPA's target.
        expr = (rule["metricsQuery"].replace("<<.Series>>", rule["name"]["as"])
                .replace("<<.LabelMatchers>>", matchers)
                .replace("<<.GroupBy>>", "pod"))
        found.append((name, rule["seriesQuery"]))
        found.append((name + " metricsQuery", expr))
    return found


@pytest.mark.parametrize(("name", "expr"), adapter_queries(), ids=[n for n, _ in adapter_queries()])
def test_prometheus_adapter_queries_return_one_value_per_pod(
    prometheus: Prometheus, name: str, expr: str
) -> None:
    result = prometheus.query(expr)
    assert [series["metric"].get("pod") for series in result] == [TARGET_LABELS["pod"]], result
