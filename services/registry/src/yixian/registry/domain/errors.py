"""What the domain refuses, and why. Entrypoints map each kind to an HTTP status."""

from __future__ import annotations


class DomainError(Exception):
    """Base of every refusal; ``field`` names the input at fault, when one is."""

    audited = False
    """Set once the refusal is in the audit log, so the API does not record it twice."""

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class NotFound(DomainError):
    """A referenced member, organization, movement or activity does not exist here."""


class NotOwner(DomainError):
    """The write would change a group this node does not own (the other side's)."""


class InvalidTransition(DomainError):
    """The movement is not in a state where this step is allowed."""


class Conflict(DomainError):
    """The request contradicts what is already recorded (e.g. a reused idempotency key)."""


class InProgress(DomainError):
    """The first request under this idempotency key is still running; retry later."""


class AlreadyExists(DomainError):
    """What the request would create is already there under the same name (e.g. a key name
    the node has given out)."""


class WouldLockOut(DomainError):
    """The change would leave the node without a way to administer it (e.g. revoking the
    last active operator key of the root organization)."""


class Invalid(DomainError):
    """The input is well formed but not acceptable (e.g. a bad national ID checksum)."""
