"""Errors of the operator.

    OperatorError
    ├── KubeError                 an API call failed (status, reason from the server)
    └── SpecProblem               the IMCluster cannot be realised as written; reported in a
        │                         Degraded condition and an Event, retried by the resync timer
        ├── SecretNotFound
        ├── SecretKeyMissing
        ├── RabbitmqClusterNotFound
        ├── RabbitmqClusterNotAllowed a cluster in another namespace that does not admit ours
        ├── ApiNotInstalled      a CRD the spec relies on (e.g. KEDA) is absent
        └── ChildRejected        the API server refused a child as invalid (e.g. a bad affinity in
                                 spec.gateway.pod): its message names the field
"""

from __future__ import annotations

__all__ = ["OperatorError", "KubeError", "SpecProblem", "SecretNotFound", "SecretKeyMissing",
           "RabbitmqClusterNotFound", "RabbitmqClusterNotAllowed", "ApiNotInstalled", "ChildRejected"]


class OperatorError(Exception):
    pass


class KubeError(OperatorError):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"HTTP {status}: {message}")
        self.status = status


class SpecProblem(OperatorError):
    reason = "InvalidSpec"
    """CamelCase, used as the condition reason and the Event reason."""


class SecretNotFound(SpecProblem):
    reason = "SecretNotFound"


class SecretKeyMissing(SpecProblem):
    reason = "SecretKeyMissing"


class RabbitmqClusterNotFound(SpecProblem):
    reason = "RabbitmqClusterNotFound"


class RabbitmqClusterNotAllowed(SpecProblem):
    reason = "RabbitmqClusterNotAllowed"


class ApiNotInstalled(SpecProblem):
    reason = "ApiNotInstalled"


class ChildRejected(SpecProblem):
    reason = "ChildRejected"
