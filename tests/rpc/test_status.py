"""Statuses that did not come from logic's own errors still become a fitting `ImError`."""

from __future__ import annotations

import grpc

from im.protocol.errors import Conflict, Internal, NotFound, Unavailable
from im.rpc.status import error_from_status, error_metadata, status_for


def test_the_code_in_the_metadata_wins_over_the_status() -> None:
    error = error_from_status(grpc.StatusCode.UNKNOWN, "gone", (("im-error-code", "not_found"),))
    assert type(error) is NotFound and error.message == "gone"


def test_an_unknown_code_is_internal() -> None:
    assert type(error_from_status(grpc.StatusCode.INTERNAL, "?", (("im-error-code", "teapot"),))) is Internal


def test_transport_failures_are_temporary() -> None:
    for status in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.CANCELLED):
        error = error_from_status(status, "connection reset", None)
        assert type(error) is Unavailable and error.temporary


def test_statuses_without_a_code_map_by_meaning() -> None:
    assert type(error_from_status(grpc.StatusCode.ALREADY_EXISTS, "", ())) is Conflict
    assert type(error_from_status(grpc.StatusCode.UNIMPLEMENTED, "", ())) is Internal


def test_a_subclass_of_an_error_keeps_its_parents_status() -> None:
    class EmailTaken(Conflict):
        pass

    assert status_for(EmailTaken("taken")) == grpc.StatusCode.ALREADY_EXISTS
    assert error_metadata(EmailTaken("taken", cid="c", request_id="0123456789abcdef")) == (
        ("im-error-code", "conflict"), ("im-request-id", "0123456789abcdef"), ("im-error-cid-bin", b"c")
    )


def test_the_request_id_and_retry_after_cross_with_the_error() -> None:
    error = error_from_status(grpc.StatusCode.RESOURCE_EXHAUSTED, "too many failed logins", (
        ("im-error-code", "rate_limited"), ("im-request-id", "0123456789abcdef"), ("im-retry-after", "59.500"),
    ))
    assert (error.code, error.request_id, error.retry_after) == ("rate_limited", "0123456789abcdef", 59.5)
    assert error_from_status(grpc.StatusCode.RESOURCE_EXHAUSTED, "x", (
        ("im-error-code", "rate_limited"), ("im-retry-after", "soon"))).retry_after is None


def test_a_status_without_our_code_never_shows_its_details_to_a_client() -> None:
    error = error_from_status(grpc.StatusCode.UNAVAILABLE, "failed to connect to all addresses; 10.0.0.7:50051", ())
    assert "10.0.0.7" in error.message and "10.0.0.7" not in error.client_body()["message"]
