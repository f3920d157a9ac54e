"""Lock-out after repeated failures (passwords on links, console sign-in), in process memory."""

from __future__ import annotations

import time


class FailureLimiter:
    """After `max_failures` failures for a key, refuse it for `lock_seconds`; success forgets the key."""

    def __init__(self, max_failures: int = 5, lock_seconds: int = 900, max_keys: int = 100_000):
        self.max_failures = max_failures
        self.lock_seconds = lock_seconds
        self.max_keys = max_keys
        self._state: dict[object, tuple[int, float]] = {}

    def locked_for(self, key: object) -> int:
        """Seconds left on the lock (0 when not locked)."""
        _, until = self._state.get(key, (0, 0.0))
        left = until - time.monotonic()
        return int(left) + 1 if left > 0 else 0

    def fail(self, key: object) -> int:
        """Count a failure; returns the lock seconds now in force (0 when still allowed)."""
        count, until = self._state.get(key, (0, 0.0))
        if until and until <= time.monotonic():
            count = 0
        count += 1
        if len(self._state) >= self.max_keys:
            self._state.clear()
        if count >= self.max_failures:
            self._state[key] = (0, time.monotonic() + self.lock_seconds)
            return self.lock_seconds
        self._state[key] = (count, 0.0)
        return 0

    def reset(self, key: object) -> None:
        self._state.pop(key, None)
