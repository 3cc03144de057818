"""Fixtures shared by every suite: a real `im serve` process on a free port."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest

from tests.support.processes import ServerProcess, im_serve

ServerFactory = Callable[..., ServerProcess]


@pytest.fixture
def server_factory(tmp_path: Path) -> Iterator[ServerFactory]:
    numbers = itertools.count()
    with ExitStack() as started:
        def make(*extra_args: str) -> ServerProcess:
            data_dir = tmp_path / f"data{next(numbers)}"
            data_dir.mkdir()
            return started.enter_context(im_serve(data_dir, *extra_args))

        yield make


@pytest.fixture
def standalone_server(server_factory: ServerFactory) -> ServerProcess:
    """A fresh `im serve` with its own data dir, stopped after the test."""
    return server_factory()
