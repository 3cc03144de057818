"""kopf handlers: every change, resume and resync timer runs the same `reconcile()`.

Run with `im-operator` or `kopf run -m im_operator.handlers`.
"""

from __future__ import annotations

import asyncio
from typing import Any

import kopf

from im_operator.config import OperatorConfig
from im_operator.errors import KubeError
from im_operator.kube import Kube
from im_operator.reconcile import reconcile
from im_operator.spec import API_GROUP, API_VERSION, PLURAL

__all__ = ["CONFIG"]

CONFIG = OperatorConfig.from_env()
RESOURCE = (API_GROUP, API_VERSION, PLURAL)
API_RETRY_SECONDS = 15


@kopf.on.startup()
async def startup(settings: kopf.OperatorSettings, memo: kopf.Memo, **_: Any) -> None:
    # Keep kopf's bookkeeping in annotations: the status belongs to the IMCluster's own schema.
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=API_GROUP)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix=API_GROUP, key="last-handled-configuration")
    settings.persistence.finalizer = f"{API_GROUP}/finalizer"
    settings.watching.server_timeout = 300
    memo["kube"] = await Kube.connect()


@kopf.on.cleanup()
async def cleanup(memo: kopf.Memo, **_: Any) -> None:
    kube: Kube | None = memo.get("kube")
    if kube is not None:
        await kube.close()


async def _run(body: kopf.Body, memo: kopf.Memo, logger: kopf.Logger) -> None:
    # Change handlers and the timer of one object run concurrently in kopf; serialise them.
    lock: asyncio.Lock = memo.setdefault("lock", asyncio.Lock())
    async with lock:
        try:
            await reconcile(memo["kube"], body, logger)
        except KubeError as e:  # the API server refused or failed: retry, never crash
            raise kopf.TemporaryError(str(e), delay=API_RETRY_SECONDS) from e


@kopf.on.resume(*RESOURCE)
@kopf.on.create(*RESOURCE)
@kopf.on.update(*RESOURCE)
async def reconcile_on_change(body: kopf.Body, memo: kopf.Memo, logger: kopf.Logger, **_: Any) -> None:
    await _run(body, memo, logger)


@kopf.timer(*RESOURCE, interval=CONFIG.resync_seconds, initial_delay=CONFIG.resync_initial_delay_seconds)
async def resync(body: kopf.Body, memo: kopf.Memo, logger: kopf.Logger, **kwargs: Any) -> None:
    """Repairs drift of the children and refreshes status from them."""
    stopped: kopf.DaemonStopped = kwargs["stopped"]  # not in kopf's TimerFn protocol, but always given
    if stopped:
        return
    try:
        await _run(body, memo, logger)
    except Exception:
        if stopped:  # the operator is exiting and closed its client under us: nothing is lost
            return
        raise
