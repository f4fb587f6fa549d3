"""The one error hierarchy of Voxdesk.

Every error raised across a package boundary is a :class:`VoxdeskError`. Vendor errors are wrapped at the
boundary (``raise StorageError(...) from exc``). ``retryable`` tells a caller or a task root whether trying the
same operation again may succeed (a dropped connection) or not (a bad input).
"""

from __future__ import annotations

from dataclasses import dataclass, field


class VoxdeskError(Exception):
    """Base of all Voxdesk errors.

    ``message`` is a static, PII-free sentence; anything customer-specific goes into ``details``, which logging
    passes through the PII filter.
    """

    retryable: bool = False
    code: str = "error"

    def __init__(self, message: str, *, retryable: bool | None = None, **details: object) -> None:
        super().__init__(message)
        self.message = message
        if retryable is not None:
            self.retryable = retryable
        self.details: dict[str, object] = details


class ConfigError(VoxdeskError):
    """The settings are wrong or unsafe (e.g. default secrets in production)."""

    code = "config"


class NotFoundError(VoxdeskError):
    """An id that does not exist."""

    code = "not_found"


class ConflictError(VoxdeskError):
    """The operation clashes with existing state (duplicate username, …)."""

    code = "conflict"


class InvalidInputError(VoxdeskError):
    """Input that can never succeed as given."""

    code = "invalid_input"


@dataclass(frozen=True)
class RowError:
    """One rejected row of an import: ``row`` is the 1-based line number in the file (header = line 1)."""

    row: int
    column: str | None
    reason: str


class ImportRejectedError(InvalidInputError):
    """A whole import was rejected; nothing was written. ``rows`` names every bad row."""

    code = "import_rejected"

    def __init__(self, message: str, rows: list[RowError]) -> None:
        super().__init__(message, rows=len(rows))
        self.rows = rows

    def __str__(self) -> str:
        shown = "; ".join(
            f"row {e.row}" + (f" column {e.column}" if e.column else "") + f": {e.reason}" for e in self.rows[:20]
        )
        more = f" (and {len(self.rows) - 20} more)" if len(self.rows) > 20 else ""
        return f"{self.message}: {shown}{more}"


class AudioFormatError(InvalidInputError):
    """Audio that cannot be decoded or has an unsupported format."""

    code = "audio_format"


class PayloadTooLargeError(InvalidInputError):
    """An upload over the configured size limit."""

    code = "payload_too_large"


class AuthenticationError(VoxdeskError):
    """Missing or wrong credentials."""

    code = "unauthenticated"


class PermissionDeniedError(VoxdeskError):
    """Authenticated, but the role does not allow this."""

    code = "forbidden"


class ModelMissingError(VoxdeskError):
    """A model's weights are not installed; ``remedy`` says how to install them."""

    code = "model_missing"

    def __init__(self, message: str, *, remedy: str) -> None:
        super().__init__(message, remedy=remedy)
        self.remedy = remedy


class StorageError(VoxdeskError):
    """The database failed; usually retryable (connection lost, lock timeout)."""

    code = "storage"
    retryable = True


class BusError(VoxdeskError):
    """The event bus failed (broker down, socket closed)."""

    code = "bus"
    retryable = True


@dataclass(frozen=True)
class ErrorBody:
    """JSON shape of an error returned by the API."""

    code: str
    message: str
    details: dict[str, object] = field(default_factory=dict)
