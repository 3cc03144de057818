"""The `im-operator` entry point and the handler registration."""

from __future__ import annotations

import kopf

from im_operator.__main__ import parse_args


def test_defaults_watch_the_whole_cluster_with_a_liveness_endpoint() -> None:
    args = parse_args([])
    assert args.namespace == [] and args.peering == ""
    assert args.liveness == "http://0.0.0.0:8080/healthz"


def test_namespaces_and_peering() -> None:
    args = parse_args(["-n", "a", "--namespace", "b", "--peering", "im-operator", "--liveness", ""])
    assert args.namespace == ["a", "b"] and args.peering == "im-operator" and args.liveness == ""


def test_handlers_cover_create_update_resume_and_a_resync_timer() -> None:
    import im_operator.handlers  # noqa: F401

    registry = kopf.get_default_registry()  # kopf has no public listing: read its registries
    changing = [h for h in registry._changing.get_all_handlers() if h.id == "reconcile_on_change"]
    assert {h.reason for h in changing} == {"create", "update", None}
    assert any(h.initial for h in changing)  # on.resume
    assert [h.id for h in registry._spawning.get_all_handlers()] == ["resync"]
