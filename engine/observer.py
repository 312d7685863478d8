"""What the engine reports as it works; the API turns it into Prometheus metrics."""

from __future__ import annotations


class Observer:
    """Receives engine events; this base class ignores them all."""

    def transition(self, definition: str, event: str, seconds: float) -> None:
        """A transition committed, `seconds` after its transaction began."""

    def job_attempt(self, kind: str) -> None:
        """A worker started an attempt of a job."""

    def job_retry(self, kind: str) -> None:
        """An attempt failed transiently and the job was put back with a backoff."""

    def job_failure(self, kind: str) -> None:
        """A job ran out of attempts (or failed for good) and its failure event was sent."""

    def webhook_delivered(self, seconds: float) -> None:
        """A receiver answered 2xx, `seconds` after the transition that caused it committed."""

    def webhook_failed(self, reason: str, dead: bool) -> None:
        """A delivery attempt failed (`reason`: timeout, connection, status, lost or refused);
        `dead`: it was the last, and the delivery is dead-lettered."""

    def listener_failure(self) -> None:
        """A listener called after a commit raised; the transition stayed committed."""
