"""What each workspace role may do: owner, admin, operator (links and campaigns), analyst (read-only).

Delivery layers ask `can(role, action)`; the matrix lives here, in one place.
"""

from __future__ import annotations

ACTIONS = (
    "links:read",
    "links:write",
    "analytics:read",
    "settings:write",
    "members:manage",
    "keys:manage",
    "consent:write",  # record a person's consent change from the console
    "privacy:manage",  # purposes, subject-rights export and erasure
    "segments:write",  # define tags and segments, recompute them
    "audiences:export",  # download hashed audience files (人群包) for ad platforms
)

_MATRIX: dict[str, frozenset[str]] = {
    "owner": frozenset(ACTIONS),
    "admin": frozenset(
        {"links:read", "links:write", "analytics:read", "settings:write", "consent:write", "privacy:manage"}
        | {"segments:write", "audiences:export"}
    ),
    "operator": frozenset({"links:read", "links:write", "analytics:read", "consent:write", "segments:write"}),
    "analyst": frozenset({"links:read", "analytics:read"}),
}


def can(role: str | None, action: str) -> bool:
    if action not in ACTIONS:
        raise ValueError(f"unknown action {action!r}")
    return role is not None and action in _MATRIX.get(role, frozenset())
