"""The ServiceMonitor scrapes both roles' metrics port through the metrics Service."""

from __future__ import annotations

from typing import Any

from im_operator.builders import gateway_service, logic_service, metrics_service, service_monitor


def test_service_monitor_selects_the_metrics_service_only(make_body: Any) -> None:
    body = make_body(monitoring={"labels": {"release": "prom"}})
    sm = service_monitor.build(body)
    assert sm["apiVersion"] == "monitoring.coreos.com/v1"
    assert sm["metadata"]["labels"]["release"] == "prom"
    assert sm["spec"]["endpoints"] == [{"port": "metrics", "path": "/metrics", "interval": "15s"}]
    assert sm["spec"]["namespaceSelector"] == {"matchNames": ["chat"]}
    selector = sm["spec"]["selector"]["matchLabels"]
    metrics = metrics_service.build(body)
    assert selector.items() <= metrics["metadata"]["labels"].items()
    assert any(p["name"] == "metrics" for p in metrics["spec"]["ports"])
    for svc in (gateway_service.build(body), logic_service.build(body)):
        assert not selector.items() <= svc["metadata"]["labels"].items()


def test_user_labels_cannot_replace_the_managed_ones(make_body: Any) -> None:
    sm = service_monitor.build(make_body(monitoring={"labels": {"app.kubernetes.io/instance": "x"}}))
    assert sm["metadata"]["labels"]["app.kubernetes.io/instance"] == "chat"
