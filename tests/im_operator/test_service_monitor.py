"""The ServiceMonitor scrapes both roles' metrics port."""

from __future__ import annotations

from typing import Any

from im_operator.builders import gateway_service, logic_service, service_monitor


def test_service_monitor_selects_both_services(make_body: Any) -> None:
    body = make_body(monitoring={"labels": {"release": "prom"}})
    sm = service_monitor.build(body)
    assert sm["apiVersion"] == "monitoring.coreos.com/v1"
    assert sm["metadata"]["labels"]["release"] == "prom"
    assert sm["spec"]["endpoints"] == [{"port": "metrics", "path": "/metrics", "interval": "15s"}]
    assert sm["spec"]["namespaceSelector"] == {"matchNames": ["chat"]}
    selector = sm["spec"]["selector"]["matchLabels"]
    for svc in (gateway_service.build(body), logic_service.build(body)):
        assert selector.items() <= svc["metadata"]["labels"].items()
        assert any(p["name"] == "metrics" for p in svc["spec"]["ports"])


def test_user_labels_cannot_replace_the_managed_ones(make_body: Any) -> None:
    sm = service_monitor.build(make_body(monitoring={"labels": {"app.kubernetes.io/instance": "x"}}))
    assert sm["metadata"]["labels"]["app.kubernetes.io/instance"] == "chat"
