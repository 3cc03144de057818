"""JWT bearer tokens: HS256, `exp` required, the algorithm pinned (so `none` is refused).

`sub` must be the user id in canonical decimal (`im.protocol.ids.parse_id`): one id has one spelling, so
`"0"`, `"-1"`, `" 1 "` or `"01"` never name a user, even in a token signed with the right key. A refused
token is answered with one of two fixed messages; what PyJWT found wrong stays out of it.
"""

from __future__ import annotations

import jwt

from im.protocol.errors import Unauthorized
from im.protocol.ids import parse_id

__all__ = ["MIN_SECRET_BYTES", "TokenCodec"]

MIN_SECRET_BYTES = 32
"""HS256 keys shorter than the hash output (RFC 7518 section 3.2) are refused."""


class TokenCodec:
    def __init__(self, secret: str, *, ttl_seconds: int = 24 * 3600, algorithm: str = "HS256") -> None:
        if len(secret.encode()) < MIN_SECRET_BYTES:
            raise ValueError(f"the JWT secret must be at least {MIN_SECRET_BYTES} bytes")
        self._secret = secret
        self._algorithm = algorithm
        self.ttl_seconds = ttl_seconds

    def issue(self, user_id: int, now: int) -> tuple[str, int]:
        """A token for `user_id` and the unix time it expires."""
        expires_at = now + self.ttl_seconds
        claims = {"sub": str(user_id), "iat": now, "exp": expires_at}
        return jwt.encode(claims, self._secret, algorithm=self._algorithm), expires_at

    def verify(self, token: str) -> tuple[int, int]:
        """The user id and expiry of a valid token; `Unauthorized` otherwise."""
        try:
            claims = jwt.decode(
                token, self._secret, algorithms=[self._algorithm], options={"require": ["exp", "sub"]}
            )
        except jwt.ExpiredSignatureError:
            raise Unauthorized("token expired") from None
        except jwt.InvalidTokenError:
            raise Unauthorized("invalid token") from None
        sub, exp = claims["sub"], claims["exp"]
        user_id = parse_id(sub) if isinstance(sub, str) else None
        if user_id is None or type(exp) not in (int, float):
            raise Unauthorized("invalid token")
        return user_id, int(exp)
