"""Domain errors shared by every package.

Delivery layers (REST, CLI, console) translate these into their own shapes; the domain never
knows about HTTP status codes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from dataclasses import field as dc_field
from typing import Any


@dataclass(frozen=True)
class FieldError:
    """One rejected field.

    `reason` is the English sentence the REST API and the CLI show. `code` (optional) names the
    problem for machines and for translation: the console looks up the template `error.<code>` (see
    `siyu.errors_i18n`) and fills it with `params`, falling back to `reason` when there is none.
    """

    field: str
    reason: str
    code: str | None = None
    params: Mapping[str, Any] = dc_field(default_factory=dict, compare=False, hash=False)

    def as_dict(self) -> dict[str, str]:
        out = {"field": self.field, "reason": self.reason}
        if self.code:
            out["code"] = self.code
        return out


class SiyuError(Exception):
    """Base class: every error a user can cause carries a human-readable message."""


class InvalidInput(SiyuError, ValueError):
    """One or more fields are invalid; each error names the field and the reason."""

    def __init__(
        self,
        errors: list[FieldError] | FieldError | str,
        reason: str | None = None,
        *,
        code: str | None = None,
        params: Mapping[str, Any] | None = None,
    ):
        if isinstance(errors, str):
            errors = [FieldError(errors, reason or "invalid", code, dict(params or {}))]
        elif isinstance(errors, FieldError):
            errors = [errors]
        self.errors: list[FieldError] = list(errors)
        super().__init__("; ".join(f"{e.field}: {e.reason}" for e in self.errors))


class NotFound(SiyuError):
    """The object does not exist in this workspace (or at all: we never say which)."""


class Conflict(SiyuError):
    """The object would clash with an existing one (e.g. a slug already taken)."""

    def __init__(self, field: str, reason: str, *, code: str | None = None, params: Mapping[str, Any] | None = None):
        self.field = field
        self.reason = reason
        self.code = code
        self.params = dict(params or {})
        super().__init__(f"{field}: {reason}")

    def field_error(self) -> FieldError:
        return FieldError(self.field, self.reason, self.code, self.params)


class PermissionDenied(SiyuError):
    """The caller is authenticated but lacks the scope or role for this action."""
