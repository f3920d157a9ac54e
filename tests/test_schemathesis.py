"""Property-based API testing: whatever schemathesis sends, the API never answers with a server error.

Schemathesis reads the OpenAPI document the API serves at /api/v1/openapi.json and, for every
operation, generates valid and deliberately invalid requests (wrong types, boundary values, missing
fields, odd strings) and sends them through the full ASGI app with a real API key. Bounded so the
whole file runs in well under a minute.

The schema is built at import (schemathesis parametrizes one test per operation at collection);
it is the same document the running app serves, which `test_the_fuzzed_schema_is_the_served_one`
checks. Requests go in-process through schemathesis' ASGI session to each test's fresh app.
"""

from __future__ import annotations

import pytest
import schemathesis
from conftest import make_settings
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.python.asgi import ASGIClient
from starlette.testclient import TestClient

from siyu.app import build_api, create_app
from siyu.bootstrap import initialize
from siyu.runtime import Runtime

SPEC = {**build_api(None).openapi(), "servers": [{"url": "/api/v1"}]}  # type: ignore[arg-type]
schema = schemathesis.openapi.from_dict(SPEC)


@pytest.fixture(scope="module")
def installation(tmp_path_factory):
    """One installation for every operation: what one fuzzed call creates, the next may stumble over."""
    runtime = Runtime.create(make_settings(tmp_path_factory.mktemp("schemathesis")))
    first_run = initialize(runtime.settings, runtime.db, demo=True)
    app = create_app(runtime=runtime)
    try:
        with TestClient(app, base_url="http://sy.test") as client:  # runs the lifespan: writer, caches
            yield {"app": app, "client": client, "auth": {"Authorization": f"Bearer {first_run.api_key}"}}
    finally:
        runtime.close()


def test_the_fuzzed_schema_is_the_served_one(installation):
    assert installation["client"].get("/api/v1/openapi.json").json() == SPEC


@schema.parametrize()
@settings(max_examples=20, deadline=None, database=None, suppress_health_check=list(HealthCheck))
def test_no_request_makes_the_api_fail_with_a_server_error(case, installation):
    session = ASGIClient(installation["app"])

    response = case.call(base_url="http://sy.test/api/v1", session=session, headers=installation["auth"])

    case.validate_response(response, checks=[not_a_server_error])
