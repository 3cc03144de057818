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


def test_replicas_get_distinct_peering_priorities_unless_one_is_given() -> None:
    from im_operator.__main__ import PRIORITY_RANGE
    assert parse_args([]).priority is None and parse_args([]).metrics_port == 0
    assert parse_args(["--peering", "p", "--priority", "7", "--metrics-port", "9100"]).priority == 7
    low, high = PRIORITY_RANGE
    assert high - low > 2**30  # two random picks collide about once in a billion


def test_children_and_read_secrets_are_watched_through_label_selectors() -> None:
    import im_operator.handlers as handlers

    registry = kopf.get_default_registry()
    watching = {h.id: h for h in registry._watching.get_all_handlers()}
    assert set(watching) >= {"secret_changed", "child_changed"}
    assert handlers.SELECTORS[handlers.SECRETS] == {"imcluster.io/watch": "true"}
    assert [h.id for h in registry._indexing.get_all_handlers()] == ["secret_readers"]
