"""Settings, read from the environment once; zero configuration gives a working system in ./data/."""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path


def _env(name: str, default: str) -> str:
    value = os.environ.get(name)
    return value if value not in (None, "") else default


@dataclass(frozen=True)
class Settings:
    data_dir: Path
    database_url: str
    events_path: str
    base_url: str
    secret_key: str
    click_flush_seconds: float = 0.5
    cache_poll_seconds: float = 1.0
    webhook_poll_seconds: float = 1.0
    click_enricher: str = "thread"  # "process" in `siyu serve`: see siyu.clicks.enricher
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def base_host(self) -> str:
        from urllib.parse import urlsplit

        return (urlsplit(self.base_url).hostname or "localhost").lower()

    @classmethod
    def from_env(cls, data_dir: str | Path | None = None, **overrides: object) -> Settings:
        root = Path(data_dir or _env("SIYU_DATA_DIR", "./data")).resolve()
        root.mkdir(parents=True, exist_ok=True)
        values: dict[str, object] = {
            "data_dir": root,
            "database_url": _env("SIYU_DATABASE_URL", f"sqlite:///{root / 'siyu.db'}"),
            "events_path": _env("SIYU_EVENTS_PATH", str(root / "events.duckdb")),
            "base_url": _env("SIYU_BASE_URL", "http://localhost:8000").rstrip("/"),
            "secret_key": _env("SIYU_SECRET_KEY", "") or _load_or_create_secret(root),
            "click_enricher": _env("SIYU_CLICK_ENRICHER", "thread"),
        }
        values.update(overrides)
        return cls(**values)  # type: ignore[arg-type]


def _load_or_create_secret(root: Path) -> str:
    """A per-installation secret (cookie signing, IP hashing) kept beside the data it protects."""
    path = root / "secret.key"
    if path.exists():
        return path.read_text().strip()
    key = secrets.token_urlsafe(32)
    path.write_text(key)
    path.chmod(0o600)
    return key
