"""Shared fixtures: a fresh installation per test on SQLite, and on PostgreSQL where asked.

`runtime` is a fully wired system (migrations, event store, click queue, caches) in a temp dir;
`client` drives the real ASGI app through httpx, lifespan included; `api_key` is an all-scopes key.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import httpx
import psycopg
import pytest

from siyu.config import Settings
from siyu.runtime import Runtime

PG_ADMIN_URL = os.environ.get("SIYU_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A throw-away PostgreSQL database on the machine's real server, dropped afterwards."""
    name = f"siyu_t_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    base = PG_ADMIN_URL.rsplit("/", 1)[0]
    try:
        yield f"{base}/{name}"
    finally:
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request, tmp_path) -> str:
    """Parametrise a test over both supported operational databases."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'siyu.db'}"
    return request.getfixturevalue("pg_url")


def make_settings(tmp_path, database_url: str | None = None, **extra) -> Settings:
    return Settings.from_env(
        data_dir=tmp_path,
        database_url=database_url or f"sqlite:///{tmp_path / 'siyu.db'}",
        events_path=str(tmp_path / "events.duckdb"),
        base_url="http://sy.test",
        secret_key="test-secret",
        click_flush_seconds=0.05,
        cache_poll_seconds=0.1,
        webhook_poll_seconds=0.1,
        **extra,
    )


@pytest.fixture
def settings(tmp_path) -> Settings:
    return make_settings(tmp_path)


@pytest.fixture
def runtime(settings) -> Iterator[Runtime]:
    rt = Runtime.create(settings)
    yield rt
    rt.close()


@pytest.fixture
def first_run(runtime):
    from siyu.bootstrap import initialize

    return initialize(runtime.settings, runtime.db, demo=True)


@pytest.fixture
def api_key(first_run) -> str:
    return first_run.api_key


@pytest.fixture
def app(runtime, first_run):
    from siyu.app import create_app

    return create_app(runtime=runtime)


@pytest.fixture
def client(app) -> Iterator[httpx.Client]:
    """A synchronous client over the ASGI app, with its lifespan (click writer, caches) running."""
    from starlette.testclient import TestClient

    with TestClient(app, base_url="http://sy.test", follow_redirects=False) as c:
        yield c


@pytest.fixture
def auth(api_key) -> dict[str, str]:
    return {"Authorization": f"Bearer {api_key}"}


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LiveServer:
    """The real app served by uvicorn on a loopback port, for clients that speak real HTTP."""

    def __init__(self, runtime: Runtime, port: int, first_run):
        self.runtime = runtime
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.first_run = first_run

    @property
    def api_key(self) -> str:
        return self.first_run.api_key


@pytest.fixture
def live_server(tmp_path) -> Iterator[LiveServer]:
    import threading
    import time

    import uvicorn

    from siyu.app import create_app
    from siyu.bootstrap import initialize

    port = free_port()
    settings = make_settings(tmp_path)
    settings = Settings(**{**settings.__dict__, "base_url": f"http://127.0.0.1:{port}"})
    rt = Runtime.create(settings)
    info = initialize(settings, rt.db, demo=True)
    config = uvicorn.Config(create_app(runtime=rt), host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if time.monotonic() > deadline:
            raise RuntimeError("live server did not start")
        time.sleep(0.02)
    try:
        yield LiveServer(rt, port, info)
    finally:
        server.should_exit = True
        thread.join(15)
        rt.close()


_exit_status = 0


def pytest_sessionfinish(session, exitstatus) -> None:
    global _exit_status
    _exit_status = int(exitstatus)


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config) -> None:
    """End the process once pytest has reported, skipping interpreter teardown.

    DuckDB's and zxing-cpp's nanobind bindings print pages of "leaked instance" notices when the
    interpreter tears down their module globals; they are noise after the real summary line, and
    CI reads the runner's closing lines.
    """
    import sys

    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(_exit_status)
