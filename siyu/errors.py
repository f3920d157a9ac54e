"""Domain errors shared by every package.

Delivery layers (REST, CLI, console) translate these into their own shapes; the domain never
knows about HTTP status codes.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class FieldError:
    field: str
    reason: str

    def as_dict(self) -> dict[str, str]:
        return {"field": self.field, "reason": self.reason}


class SiyuError(Exception):
    """Base class: every error a user can cause carries a human-readable message."""


class InvalidInput(SiyuError, ValueError):
    """One or more fields are invalid; each error names the field and the reason."""

    def __init__(self, errors: list[FieldError] | FieldError | str, reason: str | None = None):
        if isinstance(errors, str):
            errors = [FieldError(errors, reason or "invalid")]
        elif isinstance(errors, FieldError):
            errors = [errors]
        self.errors: list[FieldError] = list(errors)
        super().__init__("; ".join(f"{e.field}: {e.reason}" for e in self.errors))


class NotFound(SiyuError):
    """The object does not exist in this workspace (or at all: we never say which)."""


class Conflict(SiyuError):
    """The object would clash with an existing one (e.g. a slug already taken)."""

    def __init__(self, field: str, reason: str):
        self.field = field
        self.reason = reason
        super().__init__(f"{field}: {reason}")


class PermissionDenied(SiyuError):
    """The caller is authenticated but lacks the scope or role for this action."""
