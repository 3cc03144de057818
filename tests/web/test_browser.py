"""The browser chat client, driven in Debian's headless Chromium against a real `im serve`.

Needs the `chromium` system package (`apt-get install -y chromium`); Playwright only drives it, its own
browser download is never used. Without /usr/bin/chromium these tests fail rather than skip.
"""

from __future__ import annotations

import json
import re
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import (
    Browser,
    BrowserContext,
    ConsoleMessage,
    Page,
    WebSocket,
    expect,
    sync_playwright,
)
from websockets.sync.client import connect as ws_connect

pytestmark = [pytest.mark.browser, pytest.mark.integration]

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
TIMEOUT_MS = 10_000
RECONNECT_TIMEOUT_MS = 30_000  # server restart plus the client's backoff
PASSWORD = "correct horse battery staple"
NETWORK_NOISE = re.compile(r"WebSocket connection to|Failed to load resource|net::ERR_")


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium (apt-get install -y chromium)")
    expect.set_options(timeout=TIMEOUT_MS)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        yield browser
        browser.close()


class Client:
    """One browser context (one person's browser) with a page on the chat client."""

    def __init__(self, context: BrowserContext, url: str) -> None:
        self.context = context
        self.url = url
        self.errors: list[str] = []
        self.sent_frames: list[dict[str, Any]] = []
        self.received_frames: list[dict[str, Any]] = []
        self.page = self.open()

    def open(self) -> Page:
        page = self.context.new_page()
        page.set_default_timeout(TIMEOUT_MS)
        page.on("pageerror", lambda error: self.errors.append(str(error)))
        page.on("console", self._console)
        page.on("websocket", self._record)
        page.goto(self.url)
        self.page = page
        return page

    def _console(self, message: ConsoleMessage) -> None:
        # The browser logs failed connection attempts itself; those are expected while a server restarts.
        if message.type == "error" and not NETWORK_NOISE.search(message.text):
            self.errors.append(message.text)

    def _record(self, websocket: WebSocket) -> None:
        def decode(payload: str | bytes) -> dict[str, Any]:
            return json.loads(payload)  # type: ignore[no-any-return]

        websocket.on("framesent", lambda payload: self.sent_frames.append(decode(payload)))
        websocket.on("framereceived", lambda payload: self.received_frames.append(decode(payload)))

    def register(self, email: str, nickname: str) -> int:
        page = self.page
        page.get_by_test_id("register-email").fill(email)
        page.get_by_test_id("register-password").fill(PASSWORD)
        page.get_by_test_id("register-nickname").fill(nickname)
        page.get_by_test_id("register-submit").click()
        return self.my_user_id()

    def log_in(self, email: str) -> int:
        page = self.page
        page.get_by_test_id("login-email").fill(email)
        page.get_by_test_id("login-password").fill(PASSWORD)
        page.get_by_test_id("login-submit").click()
        return self.my_user_id()

    def log_out(self) -> None:
        self.page.get_by_test_id("logout-button").click()
        expect(self.page.get_by_test_id("login-form")).to_be_visible()

    def my_user_id(self) -> int:
        user_id = self.page.get_by_test_id("my-user-id")
        expect(user_id).to_have_text(re.compile(r"^\d+$"))
        self.expect_online()
        return int(user_id.inner_text())

    def expect_online(self, timeout: float = TIMEOUT_MS) -> None:
        expect(self.page.get_by_test_id("connection-status")).to_have_attribute("data-state", "online", timeout=timeout)

    def open_chat(self, user_id: int) -> None:
        self.page.get_by_test_id("open-chat-user-id").fill(str(user_id))
        self.page.get_by_test_id("open-chat-submit").click()
        expect(self.page.get_by_test_id("chat-title")).to_have_text(f"User {user_id}")

    def open_conversation(self, key: str) -> None:
        self.page.locator(f'[data-testid="conversation-item"][data-conversation="{key}"]').click()

    def send(self, text: str) -> None:
        self.page.get_by_test_id("compose-input").fill(text)
        self.page.get_by_test_id("compose-send").click()

    def message(self, text: str) -> Any:
        return self.page.get_by_test_id("message").filter(
            has=self.page.get_by_test_id("message-content").get_by_text(text, exact=True)
        )

    def expect_messages(self, *texts: str) -> None:
        """The open chat shows exactly these messages, in this order."""
        expect(self.page.get_by_test_id("message-content")).to_have_text(list(texts))


@pytest.fixture
def new_client(browser: Browser, standalone_server: Any) -> Iterator[Callable[[], Client]]:
    clients: list[Client] = []

    def make() -> Client:
        client = Client(browser.new_context(), standalone_server.url)
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.context.close()
    for client in clients:
        assert not client.errors, f"the page reported errors: {client.errors}"


def test_two_users_chat_live_and_get_history_back_through_sync(new_client: Callable[[], Client]) -> None:
    alice, bob = new_client(), new_client()
    alice_id = alice.register("alice@example.com", "Alice")
    alice.log_out()
    assert alice.log_in("alice@example.com") == alice_id
    bob_id = bob.register("bob@example.com", "Bob")
    assert alice_id != bob_id

    alice.open_chat(bob_id)
    alice.send("hello bob")
    expect(alice.message("hello bob")).to_have_attribute("data-status", "sent")

    bob.open_conversation(f"u:{alice_id}")
    expect(bob.message("hello bob")).to_have_attribute("data-from", str(alice_id))
    expect(bob.message("hello bob")).to_have_attribute("data-status", "received")
    bob.send("hi alice")
    expect(bob.message("hi alice")).to_have_attribute("data-status", "sent")

    expect(alice.message("hi alice")).to_have_attribute("data-from", str(bob_id))
    alice.expect_messages("hello bob", "hi alice")

    bob.page.reload()
    assert bob.my_user_id() == bob_id
    bob.open_conversation(f"u:{alice_id}")
    bob.expect_messages("hello bob", "hi alice")

    # Bob's browser is closed while Alice writes; reopened, it asks only for what came after its seq.
    bob.page.close()
    alice.send("while you were away")
    expect(alice.message("while you were away")).to_have_attribute("data-status", "sent")
    bob.sent_frames.clear()
    bob.received_frames.clear()
    bob.open()
    assert bob.my_user_id() == bob_id
    bob.open_conversation(f"u:{alice_id}")
    bob.expect_messages("hello bob", "hi alice", "while you were away")
    first_sync = next(frame for frame in bob.sent_frames if frame["type"] == "sync")
    assert first_sync["after"] > 0, first_sync
    synced = [m["content"] for f in bob.received_frames if f["type"] == "sync" for m in f["messages"]]
    assert synced == ["while you were away"]

    # A browser that never saw Bob's chats gets the whole history from sync.
    bob_elsewhere = new_client()
    assert bob_elsewhere.log_in("bob@example.com") == bob_id
    bob_elsewhere.open_conversation(f"u:{alice_id}")
    bob_elsewhere.expect_messages("hello bob", "hi alice", "while you were away")
    assert next(f for f in bob_elsewhere.sent_frames if f["type"] == "sync")["after"] == 0


def test_group_chat(new_client: Callable[[], Client]) -> None:
    alice, bob = new_client(), new_client()
    alice.register("alice@example.com", "Alice")
    bob_id = bob.register("bob@example.com", "Bob")

    alice.page.get_by_test_id("create-group-name").fill("team")
    alice.page.get_by_test_id("create-group-submit").click()
    expect(alice.page.get_by_test_id("chat-title")).to_have_text("# team")
    group = alice.page.get_by_test_id("group-item").filter(has_text="team")
    group_id = group.get_attribute("data-group-id")
    alice.page.get_by_test_id("add-member-user-id").fill(str(bob_id))
    alice.page.get_by_test_id("add-member-submit").click()
    expect(alice.page.get_by_test_id("group-members")).to_contain_text(str(bob_id))
    alice.send("welcome to the team")
    expect(alice.message("welcome to the team")).to_have_attribute("data-status", "sent")

    bob.page.locator(f'[data-testid="group-item"][data-group-id="{group_id}"]').click()
    expect(bob.page.get_by_test_id("chat-title")).to_have_text("# team")
    bob.expect_messages("welcome to the team")
    bob.send("thanks")
    expect(alice.message("thanks")).to_have_attribute("data-from", str(bob_id))
    alice.expect_messages("welcome to the team", "thanks")


def test_a_message_sent_while_the_server_is_down_is_delivered_after_reconnecting(
    new_client: Callable[[], Client], standalone_server: Any
) -> None:
    alice, bob = new_client(), new_client()
    alice_id = alice.register("alice@example.com", "Alice")
    bob_id = bob.register("bob@example.com", "Bob")
    alice.open_chat(bob_id)
    alice.send("before the restart")
    expect(alice.message("before the restart")).to_have_attribute("data-status", "sent")

    standalone_server.stop()
    expect(alice.page.get_by_test_id("connection-status")).not_to_have_attribute("data-state", "online")
    assert any(frame["type"] == "reconnect" for frame in alice.received_frames), "a draining server says so"
    alice.send("during the restart")
    expect(alice.message("during the restart")).to_have_attribute("data-status", "pending")
    standalone_server.start()

    alice.expect_online(timeout=RECONNECT_TIMEOUT_MS)
    expect(alice.message("during the restart")).to_have_attribute("data-status", "sent")
    bob.expect_online(timeout=RECONNECT_TIMEOUT_MS)
    bob.open_conversation(f"u:{alice_id}")
    bob.expect_messages("before the restart", "during the restart")
    sends = [f["cid"] for f in alice.sent_frames if f["type"] == "send" and f["content"] == "during the restart"]
    assert len(set(sends)) == 1, sends


def test_a_refused_message_is_marked_and_the_error_shown(new_client: Callable[[], Client]) -> None:
    alice = new_client()
    alice_id = alice.register("alice@example.com", "Alice")
    alice.open_chat(alice_id + 1000)
    alice.send("anyone there?")
    expect(alice.message("anyone there?")).to_have_attribute("data-status", "failed")
    expect(alice.page.locator('[data-testid="notice"]:not([data-code="registered"])')).to_be_visible()
    expect(alice.page.get_by_test_id("message-error")).to_be_visible()


def test_a_message_too_big_for_a_frame_fails_once_instead_of_being_resent_forever(
    new_client: Callable[[], Client],
) -> None:
    alice, bob = new_client(), new_client()
    alice.register("alice@example.com", "Alice")
    bob_id = bob.register("bob@example.com", "Bob")
    alice.open_chat(bob_id)
    alice.send("x" * 100_000)
    expect(alice.page.locator('[data-testid="message"][data-status="failed"]')).to_have_count(1)
    alice.expect_online(timeout=RECONNECT_TIMEOUT_MS)
    alice.send("still works")
    expect(alice.message("still works")).to_have_attribute("data-status", "sent")
    assert sum(1 for f in alice.sent_frames if f["type"] == "send" and len(f["content"]) == 100_000) == 1


def api(base_url: str, path: str, body: dict[str, Any]) -> dict[str, Any]:
    request = urllib.request.Request(
        base_url + path, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())  # type: ignore[no-any-return]


def test_a_long_history_arrives_in_sync_pages(new_client: Callable[[], Client], standalone_server: Any) -> None:
    url = standalone_server.url
    carol_id = api(url, "/api/v1/register", {"email": "carol@example.com", "password": PASSWORD, "nickname": "C"})[
        "user_id"
    ]
    token = api(url, "/api/v1/login", {"email": "carol@example.com", "password": PASSWORD})["token"]
    dave = new_client()
    dave_id = dave.register("dave@example.com", "Dave")
    dave.page.close()  # offline while Carol writes

    count = 205  # more than one sync page of 200
    burst = 50  # stays under the server's default send rate limit (50/s, burst 100)
    with ws_connect(f"{standalone_server.ws_url}?token={token}") as websocket:
        for start in range(0, count, burst):
            if start:
                time.sleep(1.1)
            lines = range(start, min(start + burst, count))
            for i in lines:
                websocket.send(json.dumps({"type": "send", "cid": f"c{i}", "to": dave_id, "content": f"line {i}"}))
            for _ in lines:
                frame = json.loads(websocket.recv(timeout=10))
                assert frame["type"] == "ack", frame

    dave.sent_frames.clear()
    dave.open()
    dave.open_conversation(f"u:{carol_id}")
    dave.expect_messages(*(f"line {i}" for i in range(count)))
    syncs = [frame for frame in dave.sent_frames if frame["type"] == "sync"]
    assert [frame["after"] for frame in syncs] == [0, 200], syncs
