"""Typing frames on a real `im serve`: relayed to the recipients only, throttled, never stored;
malformed ones get a clear error and the connection stays."""

from __future__ import annotations

from typing import Any

import pytest

from im.client import ChatConnection, HttpClient
from tests.support.inbox_events import frames_until_pong, signup
from tests.support.typing_checks import check_typing

pytestmark = pytest.mark.integration


async def test_typing_reaches_recipients_once_per_interval_and_is_never_stored(server_factory: Any) -> None:
    server = server_factory("--typing-interval", "1.5")
    http = HttpClient(server.url)
    await check_typing(http, http, interval_seconds=1.5)


@pytest.mark.parametrize(("frame", "code"), [
    ({"type": "typing"}, "bad_frame"),
    ({"type": "typing", "to": 1, "group": 2}, "bad_frame"),
    ({"type": "typing", "to": 0}, "bad_frame"),
    ({"type": "typing", "group": "2"}, "bad_frame"),
    ({"type": "typing", "to": 1, "content": "x"}, "bad_frame"),
    ({"type": "typing", "to": 1, "from": 2}, "forbidden"),
], ids=["none", "both", "id-zero", "id-string", "unknown-field", "from"])
async def test_malformed_typing_frames_get_a_clear_error(standalone_server: Any, frame: dict[str, Any],
                                                         code: str) -> None:
    http = HttpClient(standalone_server.url)
    alice = await signup(http)
    a = await ChatConnection.open(http.ws_url, alice.token)
    await a.send_frame(frame)
    error = await a.expect("error")
    assert error["code"] == code
    assert await frames_until_pong(a) == []
    await a.close()
