"""siyu.rsgi.install_fast_path: Granian's thread answers what needs no waiting, the rest is scheduled
on the event loop as Granian does it; an unexpected Granian leaves everything on the loop."""

from __future__ import annotations

import pytest
from granian import _futures

from siyu.rsgi import install_fast_path


class Watcher:
    def __init__(self, path: str):
        self.scope = type("Scope", (), {"path": path, "proto": "http"})()
        self.proto = object()
        self.events: list[str] = []

    def done(self) -> None:
        self.events.append("done")

    def err(self, exc: BaseException) -> None:
        self.events.append(f"err:{exc}")


@pytest.fixture
def granian_scheduler(monkeypatch):
    """Granian's scheduler factory replaced by one that records what reaches the event loop."""
    scheduled: list[str] = []

    def _cbsched_aioschedule(loop, ctx, cb):
        return lambda watcher: scheduled.append(watcher.scope.path)

    monkeypatch.setattr(_futures, "_cbsched_aioschedule", _cbsched_aioschedule)
    return scheduled


def answer_now(scope, proto) -> bool:
    if scope.path == "/boom":
        raise RuntimeError("boom")
    return scope.path == "/cached"


def test_answered_requests_are_done_at_once_and_the_rest_go_to_the_event_loop(granian_scheduler):
    assert install_fast_path(answer_now) is True
    schedule = _futures._cbsched_aioschedule(None, None, None)  # what Granian's worker calls
    cached, other, failing = Watcher("/cached"), Watcher("/api/v1/links"), Watcher("/boom")
    for watcher in (cached, other, failing):
        schedule(watcher)

    assert cached.events == ["done"] and other.events == [] and failing.events == ["err:boom"]
    assert granian_scheduler == ["/api/v1/links"]  # only what was not answered reached the loop


def test_installing_twice_repoints_the_same_wrapper(granian_scheduler):
    assert install_fast_path(lambda scope, proto: False)
    assert install_fast_path(answer_now)
    schedule = _futures._cbsched_aioschedule(None, None, None)
    cached = Watcher("/cached")
    schedule(cached)
    assert cached.events == ["done"] and granian_scheduler == []


def test_a_granian_without_the_expected_internal_is_left_alone(monkeypatch):
    monkeypatch.setattr(_futures, "_cbsched_aioschedule", lambda loop, cb: None, raising=False)
    unexpected = _futures._cbsched_aioschedule
    assert install_fast_path(answer_now) is False
    assert _futures._cbsched_aioschedule is unexpected
    monkeypatch.delattr(_futures, "_cbsched_aioschedule")
    assert install_fast_path(answer_now) is False
