"""The operator's own Prometheus metrics, served on `--metrics-port` (ServiceMonitor in the chart)."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

__all__ = ["RECONCILES", "RECONCILE_ERRORS", "RECONCILE_SECONDS"]

RECONCILES = Counter(
    "im_operator_reconciles_total", "Reconciliations of an IMCluster, by what triggered them and how they ended",
    ["trigger", "result"])
RECONCILE_ERRORS = Counter(
    "im_operator_reconcile_errors_total",
    "Reconciliations that could not finish: a spec problem (its condition reason) or an API error", ["reason"])
RECONCILE_SECONDS = Histogram(
    "im_operator_reconcile_duration_seconds", "Time of one reconciliation, API calls included", ["trigger"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0))
