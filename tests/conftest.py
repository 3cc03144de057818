"""Fixtures shared by every suite: a real `im serve` process on a free port."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.support.processes import BIN, ClientFacingProcess, free_port, http_ok


class ServerProcess(ClientFacingProcess):
    """A running `im serve` on 127.0.0.1 with its own data dir; `restart()` keeps port and data."""

    def __init__(self, port: int, data_dir: Path, extra_args: list[str]) -> None:
        self.port = port
        self.data_dir = data_dir
        super().__init__(
            name="im serve",
            argv=[str(BIN / "im"), "serve", "--host", "127.0.0.1", "--port", str(port),
                  "--data-dir", str(data_dir), *extra_args],
            log_path=data_dir / "server.log",
            ready=http_ok(f"http://127.0.0.1:{port}/readyz"),
        )

ServerFactory = Callable[..., ServerProcess]


@pytest.fixture
def server_factory(tmp_path: Path) -> Iterator[ServerFactory]:
    started: list[ServerProcess] = []

    def make(*extra_args: str) -> ServerProcess:
        data_dir = tmp_path / f"data{len(started)}"
        data_dir.mkdir()
        server = ServerProcess(free_port(), data_dir, list(extra_args))
        server.start()
        started.append(server)
        return server

    yield make
    for server in started:
        if server.process is not None:
            server.kill()


@pytest.fixture
def standalone_server(server_factory: ServerFactory) -> ServerProcess:
    """A fresh `im serve` with its own data dir, stopped after the test."""
    return server_factory()
