"""Operator settings, read once from the environment at start."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

__all__ = ["OperatorConfig"]


@dataclass(frozen=True)
class OperatorConfig:
    resync_seconds: float = 60.0
    """How often every IMCluster is re-applied (drift repair) and its status refreshed."""
    resync_initial_delay_seconds: float = 5.0
    """Delay before the first resync of an object, so that it does not race its create handler."""
    peering_lifetime_seconds: int = 60
    """How long a peer's record stays valid: a replica that dies silently blocks failover this long."""

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> OperatorConfig:
        return cls(
            resync_seconds=float(env.get("IM_OPERATOR_RESYNC_SECONDS", cls.resync_seconds)),
            resync_initial_delay_seconds=float(
                env.get("IM_OPERATOR_RESYNC_INITIAL_DELAY_SECONDS", cls.resync_initial_delay_seconds)),
            peering_lifetime_seconds=int(
                env.get("IM_OPERATOR_PEERING_LIFETIME_SECONDS", cls.peering_lifetime_seconds)),
        )
