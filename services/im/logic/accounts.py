"""Accounts: registration with a checked email address, and logins throttled before the KDF runs.

An email address is checked for syntax by `email-validator` (no DNS look-up: this server never sends
mail, the address is an account name) and kept in one form, lower case, so `Ann@Example.com` and
`ann@example.com` are one account. The `.test` domain of RFC 2606 is accepted, for test setups.

Failed logins are throttled per account and per client address (token buckets: a burst, then one
more per refill period). A login takes a token from both buckets *before* the password KDF runs and
gives them back when it succeeds, so neither a guesser nor a flood of wrong passwords gets more KDF
runs than the buckets allow, however many requests are in flight at once; past that the answer is
`RateLimited` with `retry_after`, at no cost. The state lives in this process (with several logic
replicas behind round-robin gRPC, each one throttles on its own) and is bounded: buckets that have
refilled are forgotten first.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass

from email_validator import EmailNotValidError, validate_email

from im.backends.base import Store
from im.contracts.records import Session, User
from im.logic.passwords import PasswordHasher
from im.protocol.errors import BadRequest, ImError, RateLimited, Unauthorized
from im.protocol.ratelimit import TokenBucket
from im.protocol.tokens import TokenCodec

__all__ = ["Accounts", "LoginThrottle", "ThrottleSettings", "checked_name", "normalise_email"]

MAX_EMAIL_CHARS = 254
MAX_NAME_CHARS = 64
MIN_PASSWORD_CHARS = 8
MAX_PASSWORD_CHARS = 256


def normalise_email(email: str) -> str:
    """The one stored form of an email address; `BadRequest` if it is not one."""
    if len(email) > MAX_EMAIL_CHARS:
        raise BadRequest(f"'email' is longer than {MAX_EMAIL_CHARS} characters")
    try:
        checked = validate_email(email.strip(), check_deliverability=False, test_environment=True)
    except EmailNotValidError as error:
        raise BadRequest(f"'email' is not an email address: {error}") from None
    return checked.normalized.lower()


def checked_name(field: str, name: str) -> str:
    """A nickname or group name as stored: trimmed, 1 to `MAX_NAME_CHARS` characters; `BadRequest` if not."""
    name = name.strip()
    if not (1 <= len(name) <= MAX_NAME_CHARS):
        raise BadRequest(f"'{field}' must be 1 to {MAX_NAME_CHARS} characters")
    return name


@dataclass(frozen=True, slots=True)
class ThrottleSettings:
    failures_per_account: int = 10
    """Failed logins one account may take in a row before it is throttled."""
    account_refill_seconds: float = 60.0
    """After that, one more attempt per this many seconds."""
    failures_per_address: int = 50
    """Failed logins one client address may make in a row (several users may share one address)."""
    address_refill_seconds: float = 6.0
    max_keys: int = 100_000
    """Accounts and addresses remembered at most, each (about 100 bytes each)."""


class _Buckets:
    """Token buckets by key, bounded in number."""

    def __init__(self, burst: int, refill_seconds: float, max_keys: int, clock: Callable[[], float]) -> None:
        self._burst = burst
        self._rate = 1.0 / refill_seconds
        self._max_keys = max_keys
        self._clock = clock
        self._buckets: dict[str, TokenBucket] = {}

    def take(self, key: str) -> float:
        """Take a token for `key`: 0.0 if there was one, else the seconds until there is."""
        now = self._clock()
        bucket = self._buckets.get(key)
        if bucket is None:
            self._make_room(now)
            bucket = self._buckets[key] = TokenBucket(self._rate, self._burst, now)
        return 0.0 if bucket.take(now) else bucket.seconds_until_token(now)

    def give_back(self, key: str) -> None:
        bucket = self._buckets.get(key)
        if bucket is not None:
            bucket.give_back(self._clock())

    def _make_room(self, now: float) -> None:
        if len(self._buckets) < self._max_keys:
            return
        self._buckets = {key: b for key, b in self._buckets.items() if not b.full(now)}
        if len(self._buckets) >= self._max_keys:  # all busy: forget the oldest half
            keep = list(self._buckets.items())[len(self._buckets) // 2:]
            self._buckets = dict(keep)

    def __len__(self) -> int:
        return len(self._buckets)


class LoginThrottle:
    def __init__(self, settings: ThrottleSettings = ThrottleSettings(), *,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._accounts = _Buckets(settings.failures_per_account, settings.account_refill_seconds,
                                  settings.max_keys, clock)
        self._addresses = _Buckets(settings.failures_per_address, settings.address_refill_seconds,
                                   settings.max_keys, clock)

    def take(self, account: str, address: str) -> None:
        """Take a login attempt's tokens; `RateLimited` (nothing taken) when either is out of them."""
        account_wait = self._accounts.take(account)
        if account_wait:
            raise RateLimited("too many failed logins for this account", retry_after=account_wait)
        address_wait = self._addresses.take(address)
        if address_wait:
            self._accounts.give_back(account)
            raise RateLimited("too many failed logins from this address", retry_after=address_wait)

    def give_back(self, account: str, address: str) -> None:
        """The attempt did not fail for its credentials (it succeeded, or a dependency was down)."""
        self._accounts.give_back(account)
        self._addresses.give_back(address)


class Accounts:
    def __init__(self, store: Store, tokens: TokenCodec, passwords: PasswordHasher, throttle: LoginThrottle) -> None:
        self._store = store
        self._tokens = tokens
        self._passwords = passwords
        self._throttle = throttle

    async def register(self, email: str, password: str, nickname: str) -> User:
        email = normalise_email(email)
        if not (MIN_PASSWORD_CHARS <= len(password) <= MAX_PASSWORD_CHARS):
            raise BadRequest(f"'password' must be {MIN_PASSWORD_CHARS} to {MAX_PASSWORD_CHARS} characters")
        nickname = checked_name("nickname", nickname)
        password_hash = await asyncio.to_thread(self._passwords.hash, password)
        return await self._store.create_user(email, password_hash, nickname)

    async def login(self, email: str, password: str, client_address: str) -> Session:
        try:
            account = normalise_email(email)
        except BadRequest:
            account = email.strip().lower()[:MAX_EMAIL_CHARS]  # no such account; throttled all the same
        self._throttle.take(account, client_address)
        try:
            user_id = await self._check_credentials(account, password)
        except ImError as error:
            if error.temporary:  # the store was down: not the caller's failure
                self._throttle.give_back(account, client_address)
            raise
        # Only a success gives the tokens back: a wrong password keeps them, and so does a call
        # cancelled half way (its KDF runs on in its thread).
        self._throttle.give_back(account, client_address)
        token, expires_at = self._tokens.issue(user_id, int(time.time()))
        return Session(token, user_id, expires_at)

    async def _check_credentials(self, account: str, password: str) -> int:
        if len(password) > MAX_PASSWORD_CHARS:  # never a password here: no KDF run for it
            raise Unauthorized("wrong email or password")
        found = await self._store.credentials(account)
        if found is None:
            await asyncio.to_thread(self._passwords.hash, password)  # the same cost as a wrong password
            raise Unauthorized("wrong email or password")
        if not await asyncio.to_thread(self._passwords.verify, password, found.password_hash):
            raise Unauthorized("wrong email or password")
        return found.user.id
