"""Per-workspace value settings (价值设置): RFM window, pyramid method, value-score weights, KOC count,
the landing page of personal share links, and the brand's UTC offset.

Weights are the operator's call — some brands weigh social value at 70 % — and are stored as given
(any non-negative pair with a positive sum; the score normalises them). Every function takes the
caller's session and never commits.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from siyu.db import utcnow
from siyu.errors import FieldError, InvalidInput
from siyu.i18n import register
from siyu.links.urls import validate_url
from siyu.value.models import ValueSettings
from siyu.value.rfm import PYRAMID_METHODS

FIELDS = (
    "window_days",
    "pyramid_method",
    "commercial_weight",
    "social_weight",
    "koc_top",
    "share_url",
    "utc_offset_hours",
)
MAX_WINDOW_DAYS = 3650
MAX_KOC_TOP = 1000
WEIGHTS_REASON = "must be non-negative numbers, and commercial + social must be more than 0"

register(
    {
        "error.value_weights": (
            "权重须为不小于 0 的数，且商业价值与社交价值之和大于 0",
            "must be non-negative numbers, and commercial + social must be more than 0",
        ),
        "error.value_number": ("必须是数字", "must be a number"),
        "error.value_pyramid_method": ("只能是以下之一：{choices}", "must be one of {choices}"),
    }
)


@dataclass(frozen=True)
class Config:
    """The settings a run uses (defaults for a workspace that never saved any)."""

    window_days: int = 365
    pyramid_method: str = "revenue_share"
    commercial_weight: float = 0.3
    social_weight: float = 0.7
    koc_top: int = 20
    share_url: str = ""
    utc_offset_hours: float = 8.0

    @property
    def weights(self) -> tuple[float, float]:
        return self.commercial_weight, self.social_weight

    def as_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in FIELDS}


def load(session: Session, workspace_id: int) -> Config:
    row = session.get(ValueSettings, workspace_id)
    if row is None:
        return Config()
    return Config(**{name: getattr(row, name) for name in FIELDS})


def _number(raw: Mapping[str, Any], key: str, errors: list[FieldError]) -> float | None:
    value = raw[key]
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        errors.append(FieldError(key, "must be a number", "value_number"))
        return None
    return float(value)


def _whole(raw: Mapping[str, Any], key: str, low: int, high: int, errors: list[FieldError]) -> int | None:
    value = raw[key]
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        errors.append(
            FieldError(key, f"must be a whole number from {low} to {high}", "int_range", {"min": low, "max": high})
        )
        return None
    return value


def validate(current: Config, raw: Mapping[str, Any]) -> Config:
    """The settings after applying `raw` (only the keys given); every problem at once."""
    errors = [FieldError(str(k)[:40], "unknown field", "field_unknown") for k in raw if k not in FIELDS]
    values = current.as_dict()
    given = {k: v for k, v in raw.items() if k in FIELDS and v is not None}
    if "window_days" in given:
        values["window_days"] = _whole(given, "window_days", 1, MAX_WINDOW_DAYS, errors)
    if "koc_top" in given:
        values["koc_top"] = _whole(given, "koc_top", 0, MAX_KOC_TOP, errors)
    if "pyramid_method" in given:
        if given["pyramid_method"] not in PYRAMID_METHODS:
            shown = ", ".join(PYRAMID_METHODS)
            errors.append(
                FieldError("pyramid_method", f"must be one of {shown}", "value_pyramid_method", {"choices": shown})
            )
        else:
            values["pyramid_method"] = given["pyramid_method"]
    weight_errors: list[FieldError] = []
    for key in ("commercial_weight", "social_weight"):
        if key in given:
            number = _number(given, key, weight_errors)
            if number is not None and number < 0:
                weight_errors.append(FieldError(key, WEIGHTS_REASON, "value_weights"))
            values[key] = number
    if not weight_errors and values["commercial_weight"] + values["social_weight"] <= 0:
        weight_errors.append(FieldError("social_weight", WEIGHTS_REASON, "value_weights"))
    errors += weight_errors
    if "utc_offset_hours" in given:
        value = _number(given, "utc_offset_hours", errors)
        if value is not None and not -14 <= value <= 14:
            errors.append(
                FieldError("utc_offset_hours", "must be between -14 and 14", "number_range", {"min": -14, "max": 14})
            )
        values["utc_offset_hours"] = value
    if "share_url" in given:
        url = given["share_url"]
        if not isinstance(url, str):
            errors.append(FieldError("share_url", "must be text", "not_text"))
        elif url.strip():
            try:
                values["share_url"] = validate_url(url, "share_url")
            except InvalidInput as exc:
                errors += exc.errors
        else:
            values["share_url"] = ""
    if errors:
        raise InvalidInput(errors)
    return Config(**values)


def save(session: Session, workspace_id: int, raw: Mapping[str, Any], actor: str = "") -> Config:
    """Validate and store changed settings; returns what is in force now."""
    config = validate(load(session, workspace_id), raw)
    row = session.get(ValueSettings, workspace_id)
    if row is None:
        row = ValueSettings(workspace_id=workspace_id)
        session.add(row)
    for name in FIELDS:
        setattr(row, name, getattr(config, name))
    row.updated_by = actor[:200]
    row.updated_at = utcnow()
    session.flush()
    return config
