"""One reconciliation of an IMCluster: resolve references, apply children, observe, patch status."""

from __future__ import annotations

import datetime
import secrets
from collections.abc import Mapping
from typing import Any, cast

import kopf

from im_operator import builders, errors, status
from im_operator.builders import keda, rabbitmq_secret, service_monitor
from im_operator.builders.common import child_name
from im_operator.kube import Kube
from im_operator.spec import API_GROUP, API_VERSION, KIND, ClusterSpec, SecretRef, parse

__all__ = ["reconcile", "resolve_inputs", "RABBITMQ_API_VERSION"]

RABBITMQ_API_VERSION = "rabbitmq.com/v1beta1"
JWT_SECRET_BYTES = 48


async def _require_secret(kube: Kube, namespace: str, ref: SecretRef, field: str) -> Mapping[str, str]:
    if not ref.name:
        raise errors.SpecProblem(f"{field}.name is required")
    secret = await kube.get("v1", "Secret", namespace, ref.name)
    if secret is None:
        raise errors.SecretNotFound(f"Secret {namespace}/{ref.name} named by {field} does not exist")
    data: Mapping[str, str] = {**(secret.get("data") or {}), **(secret.get("stringData") or {})}
    if ref.key not in data:
        raise errors.SecretKeyMissing(
            f"Secret {namespace}/{ref.name} named by {field} has no key {ref.key!r}")
    return data


async def _rabbitmq_url(kube: Kube, spec: ClusterSpec) -> str | None:
    if spec.rabbitmq_secret is not None:
        await _require_secret(kube, spec.namespace, spec.rabbitmq_secret, "spec.rabbitmq.secretRef")
        return None
    ref = spec.rabbitmq_cluster
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
    data = (user_secret or {}).get("data") or {}
    missing = [key for key in rabbitmq_secret.REQUIRED_KEYS if key not in data]
    if user_secret is None or missing:
        raise errors.SecretNotFound(
            f"Secret {ref.namespace}/{ref.name}-default-user of RabbitmqCluster {ref.name} is not ready"
            + (f" (missing {', '.join(missing)})" if user_secret is not None else ""))
    return rabbitmq_secret.url_from_default_user(data)


async def _live_replicas(kube: Kube, spec: ClusterSpec, component: str) -> int | None:
    deployment = await kube.get("apps/v1", "Deployment", spec.namespace, child_name(spec, component))
    replicas = ((deployment or {}).get("spec") or {}).get("replicas")
    return int(replicas) if replicas is not None else None


async def resolve_inputs(kube: Kube, spec: ClusterSpec) -> builders.Inputs:
    """Check every reference of the spec; raise a `SpecProblem` naming the first broken one."""
    await _require_secret(kube, spec.namespace, spec.mysql, "spec.mysql.secretRef")
    await _require_secret(kube, spec.namespace, spec.redis, "spec.redis.secretRef")
    rabbitmq_url = await _rabbitmq_url(kube, spec)
    new_jwt: str | None = None
    if spec.jwt_secret is not None:
        await _require_secret(kube, spec.namespace, spec.jwt_secret, "spec.auth.jwtSecretRef")
    elif await kube.get("v1", "Secret", spec.namespace, child_name(spec, "jwt")) is None:
        new_jwt = secrets.token_urlsafe(JWT_SECRET_BYTES)
    keda_api = await kube.has_api(keda.API_VERSION, "ScaledObject")
    if spec.gateway.keda.enabled and not keda_api:
        raise errors.ApiNotInstalled("spec.gateway.autoscaling.keda.enabled is set but KEDA "
                                     f"({keda.API_VERSION} ScaledObject) is not installed")
    return builders.Inputs(
        gateway_replicas=await _live_replicas(kube, spec, "gateway"),
        logic_replicas=await _live_replicas(kube, spec, "logic"),
        rabbitmq_url=rabbitmq_url,
        new_jwt_secret=new_jwt,
        service_monitor_api=await kube.has_api(service_monitor.API_VERSION, "ServiceMonitor"),
        keda_api=keda_api,
    )


def _owned_by(obj: Mapping[str, Any], uid: str) -> bool:
    return any(ref.get("uid") == uid for ref in (obj.get("metadata") or {}).get("ownerReferences") or [])


async def _apply(kube: Kube, body: dict[str, Any], inputs: builders.Inputs, logger: kopf.Logger) -> None:
    children = builders.build_all(body, inputs)
    kopf.adopt(children, owner=_frozen(body))
    for child in children:
        await kube.apply(child)
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


async def reconcile(kube: Kube, live_body: kopf.Body, logger: kopf.Logger) -> None:
    """Bring the children to the spec (unless paused or broken) and report what is observed."""
    # Read it fresh: kopf's body lags our own last status patch (events and transition times would
    # repeat), and it is live, changing under us while we work.
    meta = live_body.metadata
    fresh = await kube.get(f"{API_GROUP}/{API_VERSION}", KIND, meta.namespace or "default", meta.name or "")
    if fresh is None:
        return  # deleted meanwhile: garbage collection takes the children
    body: dict[str, Any] = fresh
    spec = parse(body)
    problem: status.Problem | None = None
    try:
        inputs = await resolve_inputs(kube, spec)
    except errors.SpecProblem as e:
        problem = status.Problem(e.reason, str(e))
        logger.warning("Not applying %s/%s: %s", spec.namespace, spec.name, e)
    if problem is None and not spec.paused:
        await _apply(kube, body, inputs, logger)

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
