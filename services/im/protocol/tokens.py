"""JWT bearer tokens: HS256, `exp` required, the algorithm pinned (so `none` is refused)."""

from __future__ import annotations

import jwt

from im.protocol.errors import Unauthorized

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
            return int(claims["sub"]), int(claims["exp"])
        except jwt.ExpiredSignatureError:
            raise Unauthorized("token expired") from None
        except (jwt.InvalidTokenError, ValueError) as exc:
            raise Unauthorized(f"invalid token: {exc}") from None
