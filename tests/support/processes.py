"""Real processes for tests: started, waited for, stopped, killed, restarted, with their logs kept."""

from __future__ import annotations

import os
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def http_ok(url: str) -> Callable[[], bool]:
    """Whether `url` answers 200 (an https URL's certificate is not checked: readiness only)."""
    context = ssl._create_unverified_context() if url.startswith("https:") else None

    def check() -> bool:
        try:
            with urllib.request.urlopen(url, timeout=1, context=context) as response:
                return bool(response.status == 200)
        except OSError:
            return False

    return check


def port_open(port: int) -> Callable[[], bool]:
    def check() -> bool:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return True
        except OSError:
            return False

    return check


@dataclass
class ManagedProcess:
    """`argv` run with `env` added to the environment; `ready` says when it serves."""

    name: str
    argv: list[str]
    log_path: Path
    ready: Callable[[], bool]
    env: dict[str, str] = field(default_factory=dict)
    process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 30) -> None:
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                self.argv, stdout=log, stderr=subprocess.STDOUT,
                env={**os.environ, "PYTHONUNBUFFERED": "1", **self.env},
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.process.returncode}: {self.log()}")
            if self.ready():
                return
            time.sleep(0.05)
        raise RuntimeError(f"{self.name} did not become ready in {timeout}s: {self.log()}")

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def send_signal(self, sig: int) -> None:
        assert self.process is not None
        self.process.send_signal(sig)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20) -> int:
        assert self.process is not None
        if self.process.poll() is None:
            self.process.send_signal(sig)
        try:
            code = self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            code = self.process.wait()
        self.process = None
        return code

    def kill(self) -> None:
        self.stop(signal.SIGKILL)

    def restart(self) -> None:
        if self.process is not None:
            self.stop()
        self.start()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:] if self.log_path.exists() else ""


class ClientFacingProcess(ManagedProcess):
    """A process that serves the client protocol (`im serve`, `im-gateway`) on 127.0.0.1:`port`."""

    port: int
    metrics_port: int

    @property
    def metrics_url(self) -> str:
        return f"http://127.0.0.1:{self.metrics_port}/metrics"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws"


class ServerProcess(ClientFacingProcess):
    """A running `im serve` on 127.0.0.1 with its own data dir and metrics port; `restart()` keeps
    ports and data."""

    def __init__(self, port: int, data_dir: Path, extra_args: list[str]) -> None:
        self.port = port
        self.data_dir = data_dir
        self.metrics_port = free_port()
        super().__init__(
            name="im serve",
            argv=[str(BIN / "im"), "serve", "--host", "127.0.0.1", "--port", str(port),
                  "--metrics-port", str(self.metrics_port), "--data-dir", str(data_dir), *extra_args],
            log_path=data_dir / "server.log",
            ready=http_ok(f"{'https' if '--tls-cert-file' in extra_args else 'http'}://127.0.0.1:{port}/readyz"),
        )


@contextmanager
def im_serve(data_dir: Path, *extra_args: str) -> Iterator[ServerProcess]:
    """`im serve` started on a free port with its data in `data_dir`, killed on exit (also when it
    never got ready)."""
    server = ServerProcess(free_port(), data_dir, list(extra_args))
    try:
        server.start()
        yield server
    finally:
        if server.process is not None:
            server.kill()
