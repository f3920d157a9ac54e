"""Slugs: random ones from `secrets` over an alphabet without look-alikes, and custom-slug rules."""

from __future__ import annotations

import re
import secrets

from siyu.errors import InvalidInput

# No 0/O/o, 1/l/I: a slug read aloud or off a poster must survive being retyped.
ALPHABET = "23456789abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ"
RANDOM_LENGTHS = (6, 6, 6, 7, 7, 7, 8)  # collisions move to longer slugs
CUSTOM_SLUG_RE = re.compile(r"^[A-Za-z0-9_-]+$")
MIN_CUSTOM_LENGTH = 2
MAX_CUSTOM_LENGTH = 64

# Paths the application itself serves at the root, plus words that invite phishing confusion.
RESERVED = frozenset(
    {
        "api",
        "static",
        "admin",
        "console",
        "login",
        "logout",
        "signin",
        "signout",
        "register",
        "docs",
        "redoc",
        "openapi",
        "healthz",
        "health",
        "metrics",
        "favicon",
        "robots",
        "v1",
        "v4",
        "rest",
        "q",
        "qr",
        "yourls-api",
        "app",
        "assets",
        "settings",
        "account",
        "auth",
        "oauth",
        "www",
        "mail",
        "help",
        "support",
        "about",
        "dashboard",
        "links",
        "link",
        "new",
        "edit",
        "null",
        "undefined",
        "index",
        "home",
        "_",
        "-",
    }
)


def random_slug(length: int = 6) -> str:
    return "".join(secrets.choice(ALPHABET) for _ in range(length))


def validate_custom_slug(slug: str, field: str = "slug") -> str:
    if not isinstance(slug, str):
        raise InvalidInput(field, "must be text", code="not_text")
    slug = slug.strip()
    if not MIN_CUSTOM_LENGTH <= len(slug) <= MAX_CUSTOM_LENGTH:
        raise InvalidInput(
            field,
            f"must be {MIN_CUSTOM_LENGTH} to {MAX_CUSTOM_LENGTH} characters",
            code="length_range",
            params={"min": MIN_CUSTOM_LENGTH, "max": MAX_CUSTOM_LENGTH},
        )
    if not CUSTOM_SLUG_RE.match(slug):
        raise InvalidInput(field, "may only contain letters, digits, '_' and '-'", code="slug_chars")
    if slug.lower() in RESERVED:
        raise InvalidInput(field, f"'{slug}' is reserved", code="slug_reserved", params={"slug": slug})
    return slug
