"""One reconciliation of an IMCluster: resolve references, apply children, observe, patch status."""

from __future__ import annotations

import base64
import datetime
import secrets
from collections.abc import Mapping
from typing import Any, cast

import kopf

from im_operator import builders, errors, status
from im_operator.builders import ingress, keda, rabbitmq_secret, secret_files, service_monitor
from im_operator.builders.common import WATCH_LABEL, child_name, digest
from im_operator.errors import KubeError
from im_operator.kube import Kube
from im_operator.spec import API_GROUP, API_VERSION, KIND, ClusterSpec, parse

__all__ = ["reconcile", "resolve_inputs", "watched_secrets", "RABBITMQ_API_VERSION", "APPLIED", "OBSERVED",
           "PAUSED", "GONE"]

RABBITMQ_API_VERSION = "rabbitmq.com/v1beta1"
JWT_SECRET_BYTES = 48
# What a reconciliation did, besides a problem's reason (for the operator's metrics).
APPLIED, OBSERVED, PAUSED, GONE = "applied", "observed", "paused", "gone"


def _default_user(spec: ClusterSpec) -> tuple[str, str] | None:
    ref = spec.rabbitmq_cluster
    return (ref.namespace, f"{ref.name}-default-user") if ref is not None else None


def watched_secrets(spec: ClusterSpec) -> list[tuple[str, str]]:
    """(namespace, name) of every Secret whose change must reach this IMCluster's pods."""
    found = [(spec.namespace, use.secret) for use in secret_files.uses(spec) if use.secret]
    if (default_user := _default_user(spec)) is not None:
        found.append(default_user)
    return found


async def _watch(kube: Kube, secret: Mapping[str, Any]) -> None:
    """Label a Secret we read so that the operator's label-selected watch sees it change."""
    meta = secret.get("metadata") or {}
    if (meta.get("labels") or {}).get(WATCH_LABEL) != "true":
        await kube.merge_patch("v1", "Secret", meta.get("namespace") or "", meta.get("name") or "",
                               {"metadata": {"labels": {WATCH_LABEL: "true"}}})


def _data(secret: Mapping[str, Any]) -> dict[str, str]:
    # A real API server turns stringData into data; simpler servers may keep it as written.
    plain = {key: base64.b64encode(str(value).encode()).decode()
             for key, value in (secret.get("stringData") or {}).items()}
    return {**(secret.get("data") or {}), **plain}


async def _require_secret(kube: Kube, namespace: str, name: str, keys: tuple[str, ...], field: str,
                          label: bool) -> dict[str, str]:
    if not name:
        raise errors.SpecProblem(f"{field}.name is required")
    secret = await kube.get("v1", "Secret", namespace, name)
    if secret is None:
        raise errors.SecretNotFound(f"Secret {namespace}/{name} named by {field} does not exist")
    data = _data(secret)
    missing = [key for key in keys if key not in data]
    if missing:
        raise errors.SecretKeyMissing(
            f"Secret {namespace}/{name} named by {field} has no key {', '.join(map(repr, missing))}")
    if label:
        await _watch(kube, secret)
    return data


async def _rabbitmq_url(kube: Kube, spec: ClusterSpec, label: bool) -> str | None:
    ref = spec.rabbitmq_cluster
    if spec.rabbitmq_secret is not None:
        return None
    if ref is None:
        raise errors.SpecProblem("spec.rabbitmq needs exactly one of secretRef or clusterRef")
    cluster = await kube.get(RABBITMQ_API_VERSION, "RabbitmqCluster", ref.namespace, ref.name)
    if cluster is None:
        raise errors.RabbitmqClusterNotFound(
            f"RabbitmqCluster {ref.namespace}/{ref.name} named by spec.rabbitmq.clusterRef does not exist "
            "(or the RabbitMQ cluster-operator is not installed)")
    if not rabbitmq_secret.namespace_allowed(cluster, spec.namespace):
        raise errors.RabbitmqClusterNotAllowed(
            f"RabbitmqCluster {ref.namespace}/{ref.name} does not list namespace {spec.namespace} in its "
            f"{rabbitmq_secret.ALLOWED_NAMESPACES_ANNOTATION} annotation")
    user_secret = await kube.get("v1", "Secret", ref.namespace, f"{ref.name}-default-user")
    data = _data(user_secret or {})
    missing = [key for key in rabbitmq_secret.REQUIRED_KEYS if key not in data]
    if user_secret is None or missing:
        raise errors.SecretNotFound(
            f"Secret {ref.namespace}/{ref.name}-default-user of RabbitmqCluster {ref.name} is not ready"
            + (f" (missing {', '.join(missing)})" if user_secret is not None else ""))
    if label:
        await _watch(kube, user_secret)
    return rabbitmq_secret.url_from_default_user(data)


async def _live_replicas(kube: Kube, spec: ClusterSpec, component: str) -> int | None:
    deployment = await kube.get("apps/v1", "Deployment", spec.namespace, child_name(spec, component))
    replicas = ((deployment or {}).get("spec") or {}).get("replicas")
    return int(replicas) if replicas is not None else None


def _encoded(value: str) -> str:
    return base64.b64encode(value.encode()).decode()


async def resolve_inputs(kube: Kube, spec: ClusterSpec, label: bool = False) -> builders.Inputs:
    """Check every reference of the spec; raise a `SpecProblem` naming the first broken one.

    `label`: also mark the Secrets read for the operator's Secret watch (only when it will apply).
    """
    rabbitmq_url = await _rabbitmq_url(kube, spec, label)
    new_jwt: str | None = None
    digests: dict[str, str] = {}
    for use in secret_files.uses(spec):
        if use.owned and use.field == secret_files.RABBITMQ_FIELD:
            assert rabbitmq_url is not None  # owned only while a clusterRef gives the URL
            data = {use.keys[0]: _encoded(rabbitmq_url)}
        elif use.owned:  # the generated JWT key: made once, then read like any other Secret
            existing = await kube.get("v1", "Secret", spec.namespace, use.secret)
            if existing is None:
                new_jwt = secrets.token_urlsafe(JWT_SECRET_BYTES)
                data = {use.keys[0]: _encoded(new_jwt)}
            else:
                data = _data(existing)
        else:
            data = await _require_secret(kube, spec.namespace, use.secret, use.keys, use.field, label)
        digests[use.field] = digest({key: data.get(key, "") for key in use.keys})
    keda_api = await kube.has_api(keda.API_VERSION, "ScaledObject")
    if spec.gateway.keda.enabled and not keda_api:
        raise errors.ApiNotInstalled("spec.gateway.autoscaling.keda.enabled is set but KEDA "
                                     f"({keda.API_VERSION} ScaledObject) is not installed")
    gateway_api = await kube.has_api(ingress.GATEWAY_API_VERSION, "HTTPRoute")
    if spec.gateway.http_route is not None and not gateway_api:
        raise errors.ApiNotInstalled("spec.gateway.httpRoute.enabled is set but the Gateway API "
                                     f"({ingress.GATEWAY_API_VERSION} HTTPRoute) is not installed")
    return builders.Inputs(
        gateway_replicas=await _live_replicas(kube, spec, "gateway"),
        logic_replicas=await _live_replicas(kube, spec, "logic"),
        rabbitmq_url=rabbitmq_url,
        new_jwt_secret=new_jwt,
        service_monitor_api=await kube.has_api(service_monitor.API_VERSION, "ServiceMonitor"),
        keda_api=keda_api,
        gateway_api=gateway_api,
        secret_digests=digests,
    )


def _owned_by(obj: Mapping[str, Any], uid: str) -> bool:
    return any(ref.get("uid") == uid for ref in (obj.get("metadata") or {}).get("ownerReferences") or [])


async def _apply(kube: Kube, body: dict[str, Any], inputs: builders.Inputs, logger: kopf.Logger) -> None:
    children = builders.build_all(body, inputs)
    kopf.adopt(children, owner=_frozen(body))
    for child in children:
        try:
            await kube.apply(child)
        except KubeError as e:
            if e.status not in (400, 422):
                raise
            # Invalid as built: only a field passed through from the spec can do that (pod overlay).
            raise errors.ChildRejected(
                f"the API server refused {child['kind']} {child['metadata']['name']}: {e}") from e
    namespace, uid = body["metadata"].get("namespace") or "default", body["metadata"].get("uid", "")
    for ref in builders.stale(body, inputs):
        existing = await kube.get(ref.api_version, ref.kind, namespace, ref.name)
        if existing is not None and _owned_by(existing, uid):
            await kube.delete(ref.api_version, ref.kind, namespace, ref.name)
            logger.info("Deleted %s %s: the spec no longer wants it", ref.kind, ref.name)


async def _observe(kube: Kube, spec: ClusterSpec) -> status.Observed:
    ns = spec.namespace
    autoscaler_name = (f"keda-hpa-{child_name(spec, 'gateway')}" if spec.gateway.keda.enabled
                       else child_name(spec, "gateway"))
    return status.Observed(
        gateway=await kube.get("apps/v1", "Deployment", ns, child_name(spec, "gateway")),
        logic=await kube.get("apps/v1", "Deployment", ns, child_name(spec, "logic")),
        gateway_autoscaler=await kube.get("autoscaling/v2", "HorizontalPodAutoscaler", ns, autoscaler_name),
    )


def _frozen(body: dict[str, Any]) -> kopf.Body:
    """A kopf view of our snapshot, for `kopf.adopt()` and events."""
    return kopf.Body(cast(kopf.RawBody, body))


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


async def reconcile(kube: Kube, namespace: str, name: str, logger: kopf.Logger, *, apply: bool = True) -> str:
    """Bring the children to the spec (unless paused, broken or `apply` is false) and report what is
    observed. Returns what it did (APPLIED, OBSERVED, PAUSED, GONE) or the reason of the problem found."""
    # Read it fresh: kopf's body lags our own last status patch (events and transition times would
    # repeat), and it is live, changing under us while we work.
    fresh = await kube.get(f"{API_GROUP}/{API_VERSION}", KIND, namespace, name)
    if fresh is None:
        return GONE  # deleted meanwhile: garbage collection takes the children
    body: dict[str, Any] = fresh
    spec = parse(body)
    applying = apply and not spec.paused
    problem: status.Problem | None = None
    try:
        inputs = await resolve_inputs(kube, spec, label=applying)
        if applying:
            await _apply(kube, body, inputs, logger)
    except errors.SpecProblem as e:
        problem = status.Problem(e.reason, str(e))
        logger.warning("Not applying %s/%s: %s", spec.namespace, spec.name, e)
    await _report(kube, body, spec, problem)
    if problem is not None:
        return problem.reason
    return PAUSED if spec.paused else APPLIED if applying else OBSERVED


async def _report(kube: Kube, body: dict[str, Any], spec: ClusterSpec, problem: status.Problem | None) -> None:
    previous_status: Mapping[str, Any] = body.get("status") or {}
    previous = previous_status.get("conditions") or []
    observed = await _observe(kube, spec)
    conds = status.merge_conditions(previous, status.conditions(spec, observed, problem), _now())
    new_status = status.build_status(spec, observed, conds, previous_status)
    if all(previous_status.get(key) == value for key, value in new_status.items()):
        return  # nothing to report: no write, no event
    await kube.merge_patch(f"{API_GROUP}/{API_VERSION}", KIND, spec.namespace, spec.name,
                           {"status": new_status}, subresource="status")

    for cond in status.transitions(previous, conds):
        reason, message = cond["reason"], f"{cond['type']}={cond['status']}: {cond['message']}"
        if cond["type"] == "Degraded" and cond["status"] == "True":
            kopf.warn(_frozen(body), reason=reason, message=message)
        else:
            kopf.info(_frozen(body), reason=reason, message=message)
