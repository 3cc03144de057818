"""Registration checks emails; failed logins are throttled before the password KDF runs."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from im.backends.base import UserCredentials
from im.backends.store.sqlite import SqliteStore
from im.logic.accounts import Accounts, LoginThrottle, ThrottleSettings, normalise_email
from im.logic.passwords import PasswordHasher
from im.protocol.errors import BadRequest, RateLimited, Unauthorized, Unavailable
from im.protocol.tokens import TokenCodec


class CountingHasher(PasswordHasher):
    """A cheap KDF that counts its runs (the real one takes ~50 ms on purpose)."""

    runs = 0

    def __init__(self) -> None:
        super().__init__(n=2**8, r=8, p=1)

    @staticmethod
    def _derive(password: str, salt: bytes, n: int, r: int, p: int) -> bytes:
        CountingHasher.runs += 1
        return PasswordHasher._derive(password, salt, n, r, p)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class FlakyStore(SqliteStore):
    down = False

    async def credentials(self, email: str) -> UserCredentials | None:
        if self.down:
            raise Unavailable("SQLite: database is locked")
        return await super().credentials(email)


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[FlakyStore]:
    store = FlakyStore(tmp_path / "im.sqlite3")
    await store.open()
    yield store
    await store.close()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def accounts(store: FlakyStore, clock: Clock) -> Accounts:
    CountingHasher.runs = 0
    throttle = LoginThrottle(ThrottleSettings(failures_per_account=3, account_refill_seconds=60,
                                              failures_per_address=5, address_refill_seconds=10), clock=clock)
    return Accounts(store, TokenCodec("k" * 32), CountingHasher(), throttle)


@pytest.mark.parametrize("email", ["a@b", "a b@c d", "<script>@x", "", "@", "ann@", "@example.com",
                                   "ann@@example.com", "ann@exa mple.com", "x" * 250 + "@e.com"])
def test_what_is_not_an_email_address_is_refused(email: str) -> None:
    with pytest.raises(BadRequest):
        normalise_email(email)


def test_an_email_address_has_one_form() -> None:
    assert normalise_email(" Ann.Case@Example.COM ") == "ann.case@example.com"
    assert normalise_email("bob@example.test") == "bob@example.test"
    assert normalise_email("Zoë@Bücher.example") == "zoë@bücher.example"


async def test_one_account_whatever_the_case_of_its_email(accounts: Accounts) -> None:
    user = await accounts.register("Ann@Example.com", "correct horse", "Ann")
    assert (await accounts.login("ANN@example.COM", "correct horse", "10.0.0.1")).user_id == user.id


async def test_failed_logins_of_an_account_are_throttled_before_the_kdf_runs(
    accounts: Accounts, clock: Clock,
) -> None:
    await accounts.register("ann@example.com", "correct horse", "Ann")
    runs = CountingHasher.runs
    for _ in range(3):
        with pytest.raises(Unauthorized):
            await accounts.login("ann@example.com", "wrong password", "10.0.0.1")
    assert CountingHasher.runs == runs + 3
    with pytest.raises(RateLimited) as throttled:
        await accounts.login("ann@example.com", "correct horse", "10.0.0.2")
    assert 59 <= (throttled.value.retry_after or 0) <= 60
    assert CountingHasher.runs == runs + 3, "a throttled login costs no KDF run"
    clock.now += 60
    assert (await accounts.login("ann@example.com", "correct horse", "10.0.0.2")).token


async def test_a_successful_login_does_not_use_up_the_allowance(accounts: Accounts) -> None:
    await accounts.register("ann@example.com", "correct horse", "Ann")
    for _ in range(20):
        await accounts.login("ann@example.com", "correct horse", "10.0.0.1")


async def test_failed_logins_from_one_address_are_throttled_across_accounts(accounts: Accounts) -> None:
    for i in range(5):
        with pytest.raises(Unauthorized):
            await accounts.login(f"nobody{i}@example.com", "whatever1", "10.0.0.9")
    with pytest.raises(RateLimited):
        await accounts.login("someone.else@example.com", "whatever1", "10.0.0.9")
    with pytest.raises(Unauthorized):
        await accounts.login("someone.else@example.com", "whatever1", "10.0.0.10")


async def test_concurrent_attempts_get_no_more_kdf_runs_than_the_allowance(accounts: Accounts) -> None:
    await accounts.register("ann@example.com", "correct horse", "Ann")
    runs = CountingHasher.runs
    results = await asyncio.gather(
        *(accounts.login("ann@example.com", f"wrong {i}", "10.0.0.1") for i in range(50)), return_exceptions=True)
    assert sum(isinstance(r, Unauthorized) for r in results) == 3
    assert sum(isinstance(r, RateLimited) for r in results) == 47
    assert CountingHasher.runs == runs + 3


async def test_a_store_outage_is_not_counted_as_a_failed_login(accounts: Accounts, store: FlakyStore) -> None:
    await accounts.register("ann@example.com", "correct horse", "Ann")
    store.down = True
    for _ in range(10):
        with pytest.raises(Unavailable):
            await accounts.login("ann@example.com", "correct horse", "10.0.0.1")
    store.down = False
    assert (await accounts.login("ann@example.com", "correct horse", "10.0.0.1")).token


async def test_an_overlong_password_costs_no_kdf_run(accounts: Accounts) -> None:
    await accounts.register("ann@example.com", "correct horse", "Ann")
    runs = CountingHasher.runs
    with pytest.raises(Unauthorized):
        await accounts.login("ann@example.com", "x" * 100_000, "10.0.0.1")
    assert CountingHasher.runs == runs


def test_the_throttle_forgets_refilled_keys_first_and_stays_bounded(clock: Clock) -> None:
    throttle = LoginThrottle(ThrottleSettings(failures_per_account=2, account_refill_seconds=1,
                                              failures_per_address=1000, address_refill_seconds=1,
                                              max_keys=100), clock=clock)
    throttle.take("victim@example.com", "a")
    throttle.take("victim@example.com", "a")
    for i in range(500):
        clock.now += 0.01
        throttle.take(f"other{i}@example.com", "a")
    assert len(throttle._accounts) <= 100
