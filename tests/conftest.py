"""Fixtures shared by every suite: free ports and a real `im serve` process."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

IM = str(Path(sys.executable).with_name("im"))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class ServerProcess:
    """A running `im serve` on 127.0.0.1; `restart()` brings it back on the same port and data dir."""

    port: int
    data_dir: Path
    extra_args: list[str]
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws"

    def start(self) -> None:
        with open(self.data_dir / "server.log", "ab") as log:
            self.process = subprocess.Popen(
                [IM, "serve", "--host", "127.0.0.1", "--port", str(self.port), "--data-dir", str(self.data_dir),
                 *self.extra_args],
                stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"im serve exited: {self.log()}")
            try:
                with urllib.request.urlopen(self.url + "/readyz", timeout=1) as response:
                    if response.status == 200:
                        return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"im serve did not become ready: {self.log()}")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15) -> int:
        assert self.process is not None
        if self.process.poll() is None:
            self.process.send_signal(sig)
        code = self.process.wait(timeout)
        self.process = None
        return code

    def kill(self) -> None:
        self.stop(signal.SIGKILL)

    def restart(self) -> None:
        if self.process is not None:
            self.stop()
        self.start()

    def log(self) -> str:
        path = self.data_dir / "server.log"
        return path.read_text(errors="replace")[-4000:] if path.exists() else ""


@pytest.fixture
def server_factory(tmp_path: Path) -> Iterator[type[ServerProcess] | object]:
    started: list[ServerProcess] = []

    def make(*extra_args: str) -> ServerProcess:
        server = ServerProcess(free_port(), tmp_path / f"data{len(started)}", list(extra_args))
        server.data_dir.mkdir()
        server.start()
        started.append(server)
        return server

    yield make
    for server in started:
        if server.process is not None:
            server.stop(signal.SIGKILL)


@pytest.fixture
def standalone_server(server_factory) -> ServerProcess:  # type: ignore[no-untyped-def]
    """A fresh `im serve` with its own data dir, stopped after the test."""
    return server_factory()  # type: ignore[no-any-return, operator]
