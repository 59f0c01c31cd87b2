"""What a lifecycle transition raises when it cannot be made on the document as it is.

They say what happened, not how to answer it: each unit maps them to an HTTP
status in its own errors module.
"""

from __future__ import annotations


class LifecycleError(Exception):
    """A transition that cannot be made on the document as it is."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class UnknownPrediction(LifecycleError):
    """No document for the prediction (expired, or never created)."""


class PredictionInProgress(LifecycleError):
    """Another delivery holds a fresh lease on the prediction."""


class NotCancellable(LifecycleError):
    """The prediction has started or is final: too late to cancel it."""

    def __init__(self, message: str, status: str) -> None:
        super().__init__(message)
        self.status = status
