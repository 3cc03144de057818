import time

import jwt
import pytest

from im.protocol.errors import Unauthorized
from im.protocol.tokens import TokenCodec

SECRET = "s" * 32


def test_an_issued_token_verifies_to_its_user_and_expiry() -> None:
    codec = TokenCodec(SECRET, ttl_seconds=60)
    now = int(time.time())
    token, expires_at = codec.issue(42, now)
    assert expires_at == now + 60
    assert codec.verify(token) == (42, expires_at)


@pytest.mark.parametrize(
    "token",
    [
        jwt.encode({"sub": "1", "exp": int(time.time()) - 10}, SECRET, algorithm="HS256"),
        jwt.encode({"sub": "1", "exp": int(time.time()) + 60}, "x" * 32, algorithm="HS256"),
        jwt.encode({"sub": "1"}, SECRET, algorithm="HS256"),
        jwt.encode({"sub": "1", "exp": int(time.time()) + 60}, SECRET, algorithm="HS512"),
        jwt.encode({"sub": "1", "exp": int(time.time()) + 60}, None, algorithm="none"),
        jwt.encode({"sub": "abc", "exp": int(time.time()) + 60}, SECRET, algorithm="HS256"),
        "not.a.token",
        "",
    ],
    ids=["expired", "wrong-key", "no-exp", "other-alg", "alg-none", "bad-sub", "garbage", "empty"],
)
def test_bad_tokens_are_refused(token: str) -> None:
    with pytest.raises(Unauthorized):
        TokenCodec(SECRET).verify(token)


def test_a_short_secret_is_refused() -> None:
    with pytest.raises(ValueError):
        TokenCodec("short")


def token_with(**claims: object) -> str:
    return jwt.encode({"sub": "1", "exp": int(time.time()) + 24 * 3600, **claims}, SECRET, algorithm="HS256")


@pytest.mark.parametrize("sub", ["0", "-1", " 1 ", "١", "1_0", "01", "+1", "1.0", "1e3", str(2**63), str(10**30), ""])
def test_a_sub_that_is_not_a_canonical_id_is_refused(sub: str) -> None:
    with pytest.raises(Unauthorized) as caught:
        TokenCodec(SECRET).verify(token_with(sub=sub))
    assert caught.value.message == "invalid token"


def test_the_largest_id_is_a_valid_sub() -> None:
    assert TokenCodec(SECRET).verify(token_with(sub=str(2**63 - 1)))[0] == 2**63 - 1


@pytest.mark.parametrize("token", ["garbage", "a.b.c", token_with(sub=5), token_with(exp="soon")])
def test_refusals_carry_a_fixed_message_not_the_librarys(token: str) -> None:
    with pytest.raises(Unauthorized) as caught:
        TokenCodec(SECRET).verify(token)
    assert caught.value.message == "invalid token"
