"""The one lock-out mechanism behind link passwords and console sign-in."""

from siyu.throttle import FailureLimiter


def test_locks_after_max_failures_and_success_forgets():
    limiter = FailureLimiter(max_failures=3, lock_seconds=60)
    assert limiter.fail("k") == 0 and limiter.fail("k") == 0
    limiter.reset("k")  # a success in between starts the count again
    assert limiter.fail("k") == 0 and limiter.fail("k") == 0
    assert limiter.fail("k") == 60
    assert 0 < limiter.locked_for("k") <= 60
    assert limiter.locked_for("other") == 0


def test_lock_expires(monkeypatch):
    import siyu.throttle as throttle

    now = [1000.0]
    monkeypatch.setattr(throttle.time, "monotonic", lambda: now[0])
    limiter = FailureLimiter(max_failures=1, lock_seconds=10)
    assert limiter.fail("k") == 10
    now[0] += 11
    assert limiter.locked_for("k") == 0
    assert limiter.fail("k") == 10  # counting starts afresh after the lock ran out
