"""The TypeScript SDK as a browser loads it (/sdk.js from `im serve`), in headless Chromium, on the
browser's own WebSocket, while the server is killed (SIGKILL) and restarted mid-stream."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import Browser, Page

from tests.support.contracts import check_frame

pytestmark = [pytest.mark.browser, pytest.mark.integration]

COUNT = 150

SCENARIO = """async ({ count }) => {
  const { ChatClient, HttpApi, MemoryStore } = await import('/sdk.js');
  const http = new HttpApi(location.origin);
  const signup = async (email) => {
    await http.register(email, 'correct horse', email.split('@')[0]);
    return http.login(email, 'correct horse');
  };
  const [aliceLogin, bobLogin] = [await signup('alice@example.com'), await signup('bob@example.com')];
  const run = window.run = { frames: [], alice: [], bob: [], acked: [], failed: [], done: false };
  const trace = (direction, frame) => run.frames.push([direction, frame]);
  const options = { store: new MemoryStore(), trace, reconnect: { firstDelayMs: 200, maxDelayMs: 2000 } };
  const alice = new ChatClient({ url: location.origin, credentials: aliceLogin, ...options });
  const bob = new ChatClient({ url: location.origin, credentials: bobLogin, ...options, store: new MemoryStore() });
  alice.on((e) => { if (e.kind === 'message') run.alice.push(e.message.seq); });
  bob.on((e) => { if (e.kind === 'message') run.bob.push([e.message.seq, e.message.content]); });
  await alice.start();
  await bob.start();
  (async () => {
    const sent = [];
    for (let i = 0; i < count; i += 1) {
      sent.push(alice.send(`m${i}`, { to: bobLogin.user_id }).done
        .then((m) => run.acked.push(m.content), (err) => run.failed.push(String(err))));
      await new Promise((done) => setTimeout(done, 25));
    }
    await Promise.all(sent);
    run.done = true;
  })();
}"""


def wait_until(page: Page, expression: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not page.evaluate(expression):
        if time.monotonic() > deadline:
            progress = page.evaluate("window.run && [window.run.alice.length, window.run.bob.length]")
            raise AssertionError(f"timed out: {expression}; received by alice, bob: {progress}")
        time.sleep(0.1)


@pytest.fixture
def sdk_page(browser: Browser, standalone_server: Any) -> Iterator[Page]:
    context = browser.new_context()
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(standalone_server.url + "/sdk.js")  # any page of that origin; this one runs nothing
    yield page
    context.close()
    assert not errors, errors


def test_the_sdk_in_chromium_loses_and_doubles_nothing_across_a_killed_server(
    sdk_page: Page, standalone_server: Any,
) -> None:
    page = sdk_page
    page.evaluate(SCENARIO, {"count": COUNT})
    wait_until(page, f"window.run.bob.length >= {COUNT // 3}")
    standalone_server.kill()
    standalone_server.start()
    wait_until(page, "window.run.done", timeout=90)
    wait_until(page, f"window.run.bob.length >= {COUNT} && window.run.alice.length >= {COUNT}")

    run: dict[str, Any] = page.evaluate("window.run")
    assert run["failed"] == []
    assert sorted(run["acked"]) == sorted(f"m{i}" for i in range(COUNT))
    expected_seqs = list(range(1, COUNT + 1))
    assert sorted(run["alice"]) == expected_seqs, "each of alice's seqs handed over once, none missing"
    assert sorted(seq for seq, _ in run["bob"]) == expected_seqs, "each of bob's seqs handed over once"
    assert sorted(content for _, content in run["bob"]) == sorted(f"m{i}" for i in range(COUNT))
    for direction, frame in run["frames"]:
        check_frame(direction, frame)
    assert {frame["type"] for direction, frame in run["frames"] if direction == "out"} >= {"send", "sync"}
