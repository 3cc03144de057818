"""gRPC over TLS and mutual TLS between a gateway's client and logic, with a throwaway CA."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from im.protocol.errors import Unavailable
from im.rpc.tls import channel_credentials, server_credentials
from tests.rpc.conftest import as_user
from tests.support.tls import ThrowawayCa

if TYPE_CHECKING:
    from tests.rpc.conftest import ClientFactory, FakeLogic, ServerFactory


@pytest.fixture
def ca(tmp_path: Path) -> ThrowawayCa:
    return ThrowawayCa(tmp_path / "ca")


async def test_tls_carries_calls_and_refuses_plaintext_and_unknown_authorities(
    ca: ThrowawayCa, tmp_path: Path, fake: FakeLogic, start_logic: ServerFactory, make_client: ClientFactory,
) -> None:
    logic_cert = ca.issue("logic", server=True)
    logic = await start_logic(fake, credentials=server_credentials(logic_cert.cert, logic_cert.key))
    target = f"localhost:{logic.port}"
    client = await make_client(target, credentials=channel_credentials(ca.ca_file))
    assert await client.my_groups(as_user(1)) == []
    assert await client.serving()

    plaintext = await make_client(target, timeout=1, max_attempts=1)
    with pytest.raises(Unavailable):
        await plaintext.my_groups(as_user(1))
    other_ca = ThrowawayCa(tmp_path / "other", "another CA")
    untrusting = await make_client(target, timeout=1, max_attempts=1,
                                   credentials=channel_credentials(other_ca.ca_file))
    with pytest.raises(Unavailable):
        await untrusting.my_groups(as_user(1))
    assert fake.calls["my_groups"] == 1


async def test_mutual_tls_lets_in_only_clients_with_a_certificate_of_the_ca(
    ca: ThrowawayCa, tmp_path: Path, fake: FakeLogic, start_logic: ServerFactory, make_client: ClientFactory,
) -> None:
    logic_cert = ca.issue("logic", server=True)
    logic = await start_logic(fake, credentials=server_credentials(logic_cert.cert, logic_cert.key, ca.ca_file))
    target = f"localhost:{logic.port}"
    gateway_cert = ca.issue("gateway", server=False)
    client = await make_client(target, credentials=channel_credentials(ca.ca_file, gateway_cert.cert, gateway_cert.key))
    assert await client.my_groups(as_user(1)) == []

    without_cert = await make_client(target, timeout=1, max_attempts=1, credentials=channel_credentials(ca.ca_file))
    with pytest.raises(Unavailable):
        await without_cert.my_groups(as_user(1))
    stranger = ThrowawayCa(tmp_path / "stranger", "a stranger's CA").issue("intruder", server=False)
    with_foreign_cert = await make_client(target, timeout=1, max_attempts=1,
                                          credentials=channel_credentials(ca.ca_file, stranger.cert, stranger.key))
    with pytest.raises(Unavailable):
        await with_foreign_cert.my_groups(as_user(1))
    assert fake.calls["my_groups"] == 1
