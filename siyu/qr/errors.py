"""Error types for QR generation and decoding.

Both carry a machine-readable ``field`` and ``code`` so the HTTP layer can turn them into a 4xx body
that names the offending input instead of a bare 500. ``reason`` is English; ``code`` and ``params``
let the console show it translated (``siyu.errors_i18n``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


class QrError(ValueError):
    """Base class: a user-supplied value was rejected (a ValueError, so generic handlers still catch it)."""

    def __init__(self, field: str, reason: str, code: str, params: Mapping[str, Any] | None = None) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason
        self.code = code
        self.params = dict(params or {})


class QrOptionError(QrError):
    """A rendering option (or the data to encode) is invalid; ``field`` names which one."""

    def __init__(self, field: str, reason: str, code: str = "invalid", params: Mapping[str, Any] | None = None) -> None:
        super().__init__(field, reason, code, params)


class QrDecodeError(QrError):
    """An uploaded image could not be scanned.

    ``code`` is one of: ``too_large``, ``too_many_pixels``, ``unsupported_format``, ``corrupt``,
    ``no_code_found``.
    """

    def __init__(self, code: str, reason: str, field: str = "image", params: Mapping[str, Any] | None = None) -> None:
        super().__init__(field, reason, code, params)
