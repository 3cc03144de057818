"""kopf handlers: changes, resume, the resync timer, and the watched children and Secrets all run
the same `reconcile()` of one IMCluster, serialised per IMCluster.

    IMCluster created / changed / resumed, resync timer   apply and report
    child Deployment or HPA changed (status, scale)       report at once (re-apply when deleted)
    a Secret an IMCluster reads changed (rotation)        apply: the pods' secret hash changes

Only labelled objects are watched (server-side label selectors): the children carry
`app.kubernetes.io/managed-by`, the Secrets read are labelled `imcluster.io/watch`.

Run with `im-operator` or `kopf run -m im_operator.handlers`.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import kopf

from im_operator import metrics
from im_operator.builders.common import MANAGED_BY, WATCH_LABEL
from im_operator.config import OperatorConfig
from im_operator.errors import KubeError
from im_operator.kube import Kube
from im_operator.reconcile import APPLIED, GONE, OBSERVED, PAUSED, reconcile, watched_secrets
from im_operator.spec import API_GROUP, API_VERSION, PLURAL, parse

__all__ = ["CONFIG"]

CONFIG = OperatorConfig.from_env()
RESOURCE = (API_GROUP, API_VERSION, PLURAL)
API_RETRY_SECONDS = 15
MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"
NAME_LABEL = "app.kubernetes.io/name"
INSTANCE_LABEL = "app.kubernetes.io/instance"
DEPLOYMENTS = ("apps", "v1", "deployments")
HPAS = ("autoscaling", "v2", "horizontalpodautoscalers")
SECRETS = ("", "v1", "secrets")
# KEDA's HPA carries the ScaledObject's labels but its own managed-by: select HPAs by name instead.
SELECTORS = {
    DEPLOYMENTS: {MANAGED_BY_LABEL: MANAGED_BY},
    HPAS: {NAME_LABEL: "imcluster"},
    SECRETS: {WATCH_LABEL: "true"},
}
OUTCOMES = {APPLIED, OBSERVED, PAUSED, GONE}


@kopf.on.startup()
async def startup(settings: kopf.OperatorSettings, memo: kopf.Memo, **_: Any) -> None:
    # Keep kopf's bookkeeping in annotations: the status belongs to the IMCluster's own schema.
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=API_GROUP)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix=API_GROUP, key="last-handled-configuration")
    settings.persistence.finalizer = f"{API_GROUP}/finalizer"
    settings.watching.server_timeout = 300
    settings.peering.lifetime = CONFIG.peering_lifetime_seconds
    for resource, labels in SELECTORS.items():
        settings.watching.label_selectors[resource] = ",".join(f"{k}={v}" for k, v in labels.items())
    memo["kube"] = await Kube.connect()
    memo["locks"] = {}


@kopf.on.cleanup()
async def cleanup(memo: kopf.Memo, **_: Any) -> None:
    kube: Kube | None = memo.get("kube")
    if kube is not None:
        await kube.close()


async def _run(memo: kopf.Memo, namespace: str, name: str, logger: kopf.Logger, *, trigger: str,
               apply: bool = True) -> None:
    # Handlers of one IMCluster (its own, its children's, its Secrets') run concurrently in kopf.
    locks: dict[tuple[str, str], asyncio.Lock] = memo["locks"]
    async with locks.setdefault((namespace, name), asyncio.Lock()):
        started = time.monotonic()
        try:
            outcome = await reconcile(memo["kube"], namespace, name, logger, apply=apply)
        except KubeError as e:  # the API server refused or failed: retry, never crash
            metrics.RECONCILES.labels(trigger, "error").inc()
            metrics.RECONCILE_ERRORS.labels("ApiError").inc()
            raise kopf.TemporaryError(str(e), delay=API_RETRY_SECONDS) from e
        finally:
            metrics.RECONCILE_SECONDS.labels(trigger).observe(time.monotonic() - started)
        if outcome in OUTCOMES:
            metrics.RECONCILES.labels(trigger, outcome).inc()
        else:
            metrics.RECONCILES.labels(trigger, "problem").inc()
            metrics.RECONCILE_ERRORS.labels(outcome).inc()


@kopf.on.resume(*RESOURCE)
@kopf.on.create(*RESOURCE)
@kopf.on.update(*RESOURCE)
async def reconcile_on_change(body: kopf.Body, memo: kopf.Memo, logger: kopf.Logger, **_: Any) -> None:
    await _run(memo, body.metadata.namespace or "default", body.metadata.name or "", logger, trigger="change")


@kopf.timer(*RESOURCE, interval=CONFIG.resync_seconds, initial_delay=CONFIG.resync_initial_delay_seconds)
async def resync(body: kopf.Body, memo: kopf.Memo, logger: kopf.Logger, **kwargs: Any) -> None:
    """Repairs drift of the children and refreshes status from them."""
    stopped: kopf.DaemonStopped = kwargs["stopped"]  # not in kopf's TimerFn protocol, but always given
    if stopped:
        return
    try:
        await _run(memo, body.metadata.namespace or "default", body.metadata.name or "", logger, trigger="timer")
    except Exception:
        if stopped:  # the operator is exiting and closed its client under us: nothing is lost
            return
        raise


@kopf.index(*RESOURCE)
async def secret_readers(body: kopf.Body, **_: Any) -> dict[tuple[str, str], tuple[str, str]]:
    """(Secret namespace, Secret name) -> (namespace, name) of each IMCluster that reads it."""
    spec = parse(body)
    return {secret: (spec.namespace, spec.name) for secret in watched_secrets(spec)}


def _is_initial_listing(event: kopf.RawEvent) -> bool:
    # kopf replays every existing object at start; the resume handlers cover those IMClusters.
    return event.get("type") is None


@kopf.on.event(*SECRETS, labels=SELECTORS[SECRETS])
async def secret_changed(body: kopf.Body, event: kopf.RawEvent, memo: kopf.Memo, logger: kopf.Logger,
                         **kwargs: Any) -> None:
    if _is_initial_listing(event):
        return
    readers: kopf.Index[tuple[str, str], tuple[str, str]] = kwargs["secret_readers"]  # the index above
    for namespace, name in readers.get((body.metadata.namespace or "", body.metadata.name or ""), []):
        await _run(memo, namespace, name, logger, trigger="secret")


@kopf.on.event(*DEPLOYMENTS, labels=SELECTORS[DEPLOYMENTS])
@kopf.on.event(*HPAS, labels=SELECTORS[HPAS])
async def child_changed(body: kopf.Body, event: kopf.RawEvent, memo: kopf.Memo, logger: kopf.Logger,
                        **_: Any) -> None:
    """Conditions follow the children within a watch event, not a resync period."""
    owner = body.metadata.labels.get(INSTANCE_LABEL)
    if _is_initial_listing(event) or not owner:
        return
    # A deleted child is re-created at once; any other change only needs a fresh status.
    await _run(memo, body.metadata.namespace or "default", owner, logger, trigger="child",
               apply=event.get("type") == "DELETED")
