"""The browser chat client, driven in Debian's headless Chromium (tests/web/conftest.py) against a real
`im serve`. Every frame it exchanges is checked against frames.json."""

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
    WebSocketRoute,
    expect,
)
from websockets.sync.client import connect as ws_connect

from im.protocol.limits import Limits
from tests.support.contracts import check_frame
from tests.web.conftest import TIMEOUT_MS

pytestmark = [pytest.mark.browser, pytest.mark.integration]

RECONNECT_TIMEOUT_MS = 30_000  # server restart plus the client's backoff
PASSWORD = "correct horse battery staple"
MAX_CONTENT_CHARS = Limits().max_content_chars
NETWORK_NOISE = re.compile(r"WebSocket connection to|Failed to load resource|net::ERR_")


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

    def open_chat(self, address: str, title: str) -> None:
        """Start a chat by email (or user id) from the sidebar."""
        self.page.get_by_test_id("open-chat-address").fill(address)
        self.page.get_by_test_id("open-chat-submit").click()
        expect(self.page.get_by_test_id("chat-title")).to_have_text(title)

    def conversation(self, key: str) -> Any:
        return self.page.locator(f'[data-testid="conversation-item"][data-conversation="{key}"]')

    def open_conversation(self, key: str) -> None:
        self.conversation(key).click()

    def current_conversation(self) -> str:
        item = self.page.locator('[data-testid="conversation-item"][aria-current="true"]')
        expect(item).to_have_count(1)
        return item.get_attribute("data-conversation") or ""

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
        for frame in client.received_frames:
            check_frame("in", frame)
        for frame in client.sent_frames:
            if not (frame.get("type") == "send" and len(frame.get("content", "")) > MAX_CONTENT_CHARS):
                check_frame("out", frame)  # (only the oversized-frame case sends past the limit, on purpose)


def test_two_users_chat_live_and_get_history_back_through_sync(new_client: Callable[[], Client]) -> None:
    alice, bob = new_client(), new_client()
    alice_id = alice.register("alice@example.com", "Alice")
    alice.log_out()
    assert alice.log_in("alice@example.com") == alice_id
    bob_id = bob.register("bob@example.com", "Bob")
    assert alice_id != bob_id

    alice.open_chat(str(bob_id), "Bob")
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
    synced = [
        m["content"] for f in bob.received_frames if f["type"] == "sync" for m in f["messages"] if m["type"] == "msg"
    ]
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
    sockets: list[WebSocketRoute] = []  # Bob's connection passes through here, so a frame can be slipped in

    def relay(socket: WebSocketRoute) -> None:
        socket.connect_to_server()
        sockets.append(socket)

    bob.page.route_web_socket(re.compile(r"/ws"), relay)
    bob_id = bob.register("bob@example.com", "Bob")

    create_group(alice, "team")
    group = alice.current_conversation()
    add_member(alice, str(bob_id))
    expect(alice.page.get_by_test_id("member-name")).to_have_text(["You", "Bob"])
    alice.send("welcome to the team")
    expect(alice.message("welcome to the team")).to_have_attribute("data-status", "sent")

    bob.open_conversation(group)
    expect(bob.page.get_by_test_id("chat-title")).to_have_text("# team")
    bob.expect_messages("welcome to the team")
    bob.send("thanks")
    expect(alice.message("thanks")).to_have_attribute("data-from", str(bob_id))
    alice.expect_messages("welcome to the team", "thanks")

    # A frame of a type this client does not know (slipped in ahead of the next one from the server) is
    # ignored: no page error, and the chat goes on. (The page's recorder does not see it: not checked.)
    sockets[-1].send(json.dumps({"type": "poll_closed", "group": int(group[2:]), "from": bob_id}))
    alice.send("still here")
    bob.expect_messages("welcome to the team", "thanks", "still here")

    # The owner may leave only once alone; handed over to Bob, Alice leaves and Bob runs the group.
    alice.page.get_by_test_id("leave-group").click()
    expect(alice.page.locator('[data-testid="notice"][data-code="conflict"]')).to_be_visible()
    expect(bob.page.get_by_test_id("rename-form")).to_be_hidden()
    alice.page.get_by_test_id("member-owner-make").click()
    expect(bob.page.get_by_test_id("rename-form")).to_be_visible()
    expect(alice.page.get_by_test_id("member-remove")).to_have_count(0)
    alice.page.get_by_test_id("leave-group").click()
    expect(alice.page.get_by_test_id("chat-closed")).to_be_visible()
    expect(bob.page.get_by_test_id("member-name")).to_have_text(["You"])


def test_nicknames_unread_reads_edits_recalls_group_admin_and_blocks_between_two_users(
    new_client: Callable[[], Client], tmp_path: Path
) -> None:
    alice, bob = new_client(), new_client()
    alice_id = alice.register("alice@example.com", "Alice")
    bob_id = bob.register("bob@example.com", "Bob")
    expect(alice.page.get_by_test_id("my-nickname")).to_have_text("Alice")
    expect(bob.page.get_by_test_id("my-nickname")).to_have_text("Bob")

    # A chat started by email, shown under the peer's nickname.
    alice.open_chat("BOB@example.com", "Bob")
    alice.send("hello bob")
    alice.send("are you there?")
    expect(alice.message("are you there?")).to_have_attribute("data-status", "sent")
    expect(alice.message("hello bob")).to_have_attribute("data-read", "false")

    # Bob, elsewhere: the chat is in his list, under Alice's nickname, with two unread.
    chat = bob.conversation(f"u:{alice_id}")
    expect(chat.locator(".title")).to_have_text("Alice")
    expect(chat.get_by_test_id("unread")).to_have_text("2")
    bob.open_conversation(f"u:{alice_id}")
    expect(bob.page.get_by_test_id("chat-title")).to_have_text("Alice")
    expect(bob.message("hello bob").get_by_test_id("message-sender")).to_have_text("Alice")
    expect(chat.get_by_test_id("unread")).to_have_count(0)
    # ... which he read: his read pointer moved, and Alice sees the read ticks.
    second = int(bob.message("are you there?").get_attribute("data-id") or 0)
    eventually(bob, lambda: {"type": "read", "peer": alice_id, "up_to": second} in bob.sent_frames, "Bob's read frame")
    expect(alice.message("hello bob")).to_have_attribute("data-read", "true")
    expect(alice.message("are you there?").get_by_test_id("message-status")).to_have_text("✓✓ read")

    # Alice edits one and recalls the other; Bob sees both.
    alice.message("hello bob").get_by_test_id("message-edit").click()
    expect(alice.page.get_by_test_id("compose-input")).to_have_value("hello bob")
    alice.page.get_by_test_id("compose-input").fill("hello bob, edited")
    alice.page.get_by_test_id("compose-send").click()
    alice.message("are you there?").get_by_test_id("message-recall").click()
    expect(bob.message("hello bob, edited").get_by_test_id("message-edited")).to_have_text("edited")
    expect(bob.message("message recalled")).to_have_attribute("data-recalled", "true")
    bob.expect_messages("hello bob, edited", "message recalled")
    alice.expect_messages("hello bob, edited", "message recalled")
    expect(alice.message("message recalled").get_by_test_id("message-edit")).to_have_count(0)
    # A browser that never saw them gets both as they are now, from sync.
    bob_elsewhere = new_client()
    bob_elsewhere.log_in("bob@example.com")
    bob_elsewhere.open_conversation(f"u:{alice_id}")
    bob_elsewhere.expect_messages("hello bob, edited", "message recalled")
    expect(bob_elsewhere.message("hello bob, edited").get_by_test_id("message-edited")).to_be_visible()
    bob_elsewhere.context.close()

    # A group: Alice adds Bob by email and renames it; Bob sees the new name, the members panel shows
    # nicknames, only the owner gets the owner's controls; removed, Bob can no longer write there.
    create_group(alice, "team")
    group = alice.current_conversation()
    add_member(alice, "bob@example.com")
    expect(alice.page.get_by_test_id("member-name")).to_have_text(["You", "Bob"])
    alice.page.get_by_test_id("rename-input").fill("crew")
    alice.page.get_by_test_id("rename-submit").click()
    expect(alice.page.get_by_test_id("chat-title")).to_have_text("# crew")
    alice.send("welcome")
    expect(bob.conversation(group).locator(".title")).to_have_text("# crew")
    expect(bob.conversation(group).get_by_test_id("unread")).to_have_text("1")
    alice.send("oops, not for the team")
    expect(bob.conversation(group).get_by_test_id("unread")).to_have_text("2")
    alice.message("oops, not for the team").get_by_test_id("message-recall").click()
    expect(bob.conversation(group).get_by_test_id("unread")).to_have_text("1")  # a recall counts in no badge
    expect(bob.page.get_by_test_id("conversation-item").locator(".title")).to_have_text(["# crew", "Alice"])
    bob.open_conversation(group)
    expect(bob.page.get_by_test_id("member-name")).to_have_text(["Alice", "You"])
    expect(bob.page.get_by_test_id("member-owner")).to_have_count(1)
    expect(bob.page.get_by_test_id("rename-form")).to_be_hidden()
    expect(bob.page.get_by_test_id("member-remove")).to_have_count(0)
    expect(bob.page.get_by_test_id("leave-group")).to_be_visible()
    expect(alice.page.get_by_test_id("add-member-form")).to_be_visible()
    screenshot = tmp_path / "group.png"
    alice.page.screenshot(path=str(screenshot))
    assert screenshot.stat().st_size > 0
    alice.page.get_by_test_id("member-remove").click()
    expect(alice.page.get_by_test_id("member-name")).to_have_text(["You"])
    expect(bob.page.get_by_test_id("chat-closed")).to_be_visible()
    expect(bob.page.get_by_test_id("chat-title")).to_have_text("# crew (left)")
    expect(bob.page.get_by_test_id("compose-form")).to_be_hidden()
    bob.page.screenshot(path=str(tmp_path / "removed.png"))

    # Bob blocks Alice: her next message is refused, visibly; unblocked, the retry goes through.
    bob.open_conversation(f"u:{alice_id}")
    bob.page.get_by_test_id("block-toggle").click()
    expect(bob.page.get_by_test_id("block-toggle")).to_have_text("Unblock")
    alice.open_conversation(f"u:{bob_id}")
    alice.send("blocked?")
    expect(alice.message("blocked?")).to_have_attribute("data-status", "failed")
    expect(alice.page.get_by_test_id("conversation-item").locator(".title")).to_have_text(["Bob", "# crew"])
    expect(alice.message("blocked?").get_by_test_id("message-error")).to_contain_text("forbidden")
    expect(alice.page.locator('[data-testid="notice"][data-code="forbidden"]')).to_be_visible()
    bob.page.get_by_test_id("block-toggle").click()
    expect(bob.page.get_by_test_id("block-toggle")).to_have_text("Block")
    alice.message("blocked?").get_by_test_id("message-retry").click()
    expect(alice.message("blocked?")).to_have_attribute("data-status", "sent")
    expect(bob.message("blocked?")).to_be_visible()
    alice.page.screenshot(path=str(tmp_path / "chat.png"))
    print(f"screenshots: {tmp_path}")


def test_a_message_sent_while_the_server_is_down_is_delivered_after_reconnecting(
    new_client: Callable[[], Client], standalone_server: Any
) -> None:
    alice, bob = new_client(), new_client()
    alice_id = alice.register("alice@example.com", "Alice")
    bob_id = bob.register("bob@example.com", "Bob")
    alice.open_chat(str(bob_id), "Bob")
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
    alice.open_chat(str(alice_id + 1000), f"user {alice_id + 1000}")
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
    alice.open_chat(str(bob_id), "Bob")
    alice.send("x" * 100_000)
    expect(alice.page.locator('[data-testid="message"][data-status="failed"]')).to_have_count(1)
    alice.expect_online(timeout=RECONNECT_TIMEOUT_MS)
    alice.send("still works")
    expect(alice.message("still works")).to_have_attribute("data-status", "sent")
    assert sum(1 for f in alice.sent_frames if f["type"] == "send" and len(f["content"]) == 100_000) == 1


def test_typing_and_presence_between_two_users(
    new_client: Callable[[], Client], standalone_server: Any, tmp_path: Path
) -> None:
    alice, bob = new_client(), new_client()
    alice_id = alice.register("alice@example.com", "Alice")
    bob_id = bob.register("bob@example.com", "Bob")
    alice.open_chat(str(bob_id), "Bob")
    alice.send("hi bob")
    expect(alice.message("hi bob")).to_have_attribute("data-status", "sent")

    # Bob is online: a dot in Alice's list, "online" in her chat's header.
    chat = alice.conversation(f"u:{bob_id}")
    dot = chat.get_by_test_id("presence-dot")
    header = alice.page.get_by_test_id("chat-presence")
    expect(dot).to_have_attribute("data-online", "true")
    expect(header).to_have_text("online")

    # Bob types: Alice sees "typing…", in the chat and in the list; his message takes it away at once.
    bob.open_conversation(f"u:{alice_id}")
    bob.expect_online()  # typing is ephemeral: none is sent, or kept for later, while connecting
    typing = alice.page.get_by_test_id("typing-indicator")
    started = time.monotonic()
    bob.page.get_by_test_id("compose-input").press_sequentially("hello alice")
    expect(typing).to_have_text("typing…")
    expect(chat.locator(".preview")).to_have_text("typing…")
    alice.page.screenshot(path=str(tmp_path / "typing.png"))
    typed = [f for f in bob.sent_frames if f["type"] == "typing"]
    assert typed and all(f == {"type": "typing", "to": alice_id} for f in typed), typed
    assert len(typed) <= 1 + (time.monotonic() - started) / 3, "at most one per typing interval, not per key"
    bob.page.get_by_test_id("compose-send").click()
    expect(alice.message("hello alice")).to_be_visible()
    expect(typing).to_have_text("", timeout=1_000)  # shown for 5 s otherwise

    # Bob types a little and stops: "typing…" stays a few seconds, then goes.
    type_until_shown(bob, "!", typing, "typing…")
    shown_at = time.monotonic()
    expect(typing).to_have_text("", timeout=TIMEOUT_MS)
    assert time.monotonic() - shown_at >= 3, "shown for a few seconds"

    # In a group, the typist is named.
    create_group(alice, "team")
    group = alice.current_conversation()
    add_member(alice, str(bob_id))
    bob.open_conversation(group)
    type_until_shown(bob, "x", typing, "Bob is typing…")
    assert {"type": "typing", "group": int(group[2:])} in bob.sent_frames

    # Bob leaves: offline, with when he was last seen, and typing no more; back, online again.
    alice.open_conversation(f"u:{bob_id}")
    bob.page.close()
    expect(dot).to_have_attribute("data-online", "false")
    assert alice.conversation(group).locator(".preview").inner_text() != "Bob is typing…", "rendered with the dot"
    expect(header).to_have_text(re.compile(r"^last seen \S"))
    expect(header).to_have_attribute("data-online", "false")
    alice.page.screenshot(path=str(tmp_path / "offline.png"))
    bob.open()
    bob.expect_online()
    expect(dot).to_have_attribute("data-online", "true")

    # The server restarts: what Alice knew of Bob is gone until her new connection watches him again.
    watches = sum(1 for f in alice.sent_frames if f["type"] == "presence")
    standalone_server.stop()
    expect(dot).to_have_count(0)
    standalone_server.start()
    alice.expect_online(timeout=RECONNECT_TIMEOUT_MS)
    bob.expect_online(timeout=RECONNECT_TIMEOUT_MS)
    expect(dot).to_have_attribute("data-online", "true")
    assert sum(1 for f in alice.sent_frames if f["type"] == "presence") > watches
    print(f"screenshots: {tmp_path}")


def type_until_shown(typist: Client, key: str, indicator: Any, text: str) -> None:
    """Press `key` in the typist's compose box until the other side shows `text`: a typing frame goes out
    once per interval, and the server may drop one too close to the last it forwarded."""
    deadline = time.monotonic() + TIMEOUT_MS / 1000
    while indicator.inner_text() != text:
        assert time.monotonic() < deadline, f"{text!r} never shown"
        typist.page.get_by_test_id("compose-input").press(key)
        typist.page.wait_for_timeout(200)


def eventually(client: Client, check: Callable[[], bool], what: str) -> None:
    """Wait until `check()` holds; waiting through the page lets Playwright deliver its events meanwhile."""
    deadline = time.monotonic() + TIMEOUT_MS / 1000
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        client.page.wait_for_timeout(50)


def create_group(client: Client, name: str) -> None:
    client.page.get_by_test_id("create-group-name").fill(name)
    client.page.get_by_test_id("create-group-submit").click()
    expect(client.page.get_by_test_id("chat-title")).to_have_text(f"# {name}")


def add_member(client: Client, address: str) -> None:
    client.page.get_by_test_id("add-member-address").fill(address)
    client.page.get_by_test_id("add-member-submit").click()


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
