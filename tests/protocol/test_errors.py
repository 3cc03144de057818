"""What a client is told about an error: a fixed message for infrastructure failures, always a request id."""

import logging

import pytest

from im.protocol.errors import (
    BadFrame,
    ImError,
    Internal,
    NotFound,
    RateLimited,
    Unavailable,
    error_for_code,
    new_request_id,
)

DETAIL = "MySQL at 10.0.0.7:3306 unavailable: (2003, \"Can't connect to MySQL server\")"


@pytest.mark.parametrize("error_type", [Unavailable, Internal])
def test_an_infrastructure_error_shows_its_fixed_message_and_logs_the_detail_under_its_request_id(
    error_type: type[ImError], caplog: pytest.LogCaptureFixture,
) -> None:
    error = error_type(DETAIL)
    with caplog.at_level(logging.WARNING, logger="im.errors"):
        body = error.client_body()
        error.client_body()
    assert body == {"code": error_type.code, "message": error_type.client_message, "request_id": error.request_id}
    assert "10.0.0.7" not in body["message"] and "MySQL" not in body["message"]
    [record] = caplog.records  # logged once, however often it is shown
    assert error.request_id in record.getMessage() and DETAIL in record.getMessage()


def test_a_client_error_shows_its_own_message_and_logs_nothing(caplog: pytest.LogCaptureFixture) -> None:
    error = NotFound("no user 7", cid="c1")
    with caplog.at_level(logging.DEBUG, logger="im.errors"):
        body = error.client_body()
    assert body == {"code": "not_found", "message": "no user 7", "request_id": error.request_id}
    assert caplog.records == []


def test_request_ids_are_16_hex_digits_and_differ() -> None:
    ids = {new_request_id() for _ in range(1000)}
    assert len(ids) == 1000
    assert all(len(i) == 16 and int(i, 16) >= 0 for i in ids)
    assert BadFrame("x").request_id != BadFrame("x").request_id


def test_an_error_rebuilt_with_its_request_id_keeps_it_and_is_not_logged_again(
    caplog: pytest.LogCaptureFixture,
) -> None:
    error = error_for_code("unavailable", Unavailable.client_message or "", request_id="00ff00ff00ff00ff")
    with caplog.at_level(logging.WARNING, logger="im.errors"):
        assert error.client_body()["request_id"] == "00ff00ff00ff00ff"
    assert caplog.records == []


def test_retry_after_is_whole_seconds_rounded_up() -> None:
    assert RateLimited("slow down", retry_after=0.2).client_body()["retry_after"] == 1
    assert RateLimited("slow down", retry_after=12.01).client_body()["retry_after"] == 13
    assert "retry_after" not in RateLimited("slow down").client_body()
