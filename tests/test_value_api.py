"""Customer value from the outside: the REST API, the console pages and the CLI, over the real pipeline.

Orders come in through Segment's `POST /v1/batch`, the runtime's stitcher links them, and the value
run is started the way operators start it (the API, the console button, `siyu value run`).
"""

from __future__ import annotations

import base64
import re
import time

import pytest
import value_data
from sqlalchemy import select
from typer.testing import CliRunner

from siyu.sources import service as sources
from siyu.workspaces import service as workspaces
from siyu.workspaces.models import Workspace

CSRF_RE = re.compile(r'name="csrf" value="([^"]+)"')


@pytest.fixture(autouse=True)
def cheap_password_hashing(monkeypatch):
    from argon2 import PasswordHasher

    from siyu import security

    monkeypatch.setattr(security, "_hasher", PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))


@pytest.fixture
def ws(runtime, first_run) -> int:
    with runtime.db.session() as s:
        return s.scalar(select(Workspace.id).where(Workspace.slug == first_run.workspace))


@pytest.fixture
def shop(client, runtime, ws, auth) -> dict:
    """The shop's orders through the tracking API, stitched, and one value run through the API."""
    with runtime.db.session() as s:
        key = sources.create_source(s, ws, "商城", "website").write_key
    basic = {"Authorization": "Basic " + base64.b64encode(f"{key}:".encode()).decode()}
    for chunk in value_data.chunks(value_data.shop()):
        response = client.post("/v1/batch", json={"batch": chunk}, headers=basic)
        assert response.status_code == 200, response.text
    runtime.stitch_now()
    run = client.post("/api/v1/value/run", json={"wait": True}, headers=auth)
    assert run.status_code == 200, run.text
    assert run.json()["status"] == "succeeded"
    return run.json()


def member(client, auth, member_id: str) -> int:
    found = client.get("/api/v1/profiles/lookup", params={"type": "member_id", "value": member_id}, headers=auth)
    assert found.status_code == 200, found.text
    return found.json()["super_id"]


def key_with(runtime, ws: int, *scopes: str) -> dict[str, str]:
    with runtime.db.session() as s:
        issued = workspaces.create_api_key(s, ws, "limited", list(scopes))
    return {"Authorization": f"Bearer {issued.secret}"}


# --- REST ---------------------------------------------------------------------------------------------------


def test_the_rfm_grid_pyramid_and_clv_summary(client, auth, shop):
    rfm = client.get("/api/v1/value/rfm", headers=auth).json()
    assert rfm["run_id"] == shop["id"] and rfm["note"] is None
    assert len(rfm["rfm"]["grid"]) == 8 and sum(c["customers"] for c in rfm["rfm"]["grid"]) == 61
    assert [t["tier"] for t in rfm["pyramid"]["tiers"]] == ["vip", "high", "medium", "low"]
    clv = client.get("/api/v1/value/clv", headers=auth).json()["clv"]
    assert clv["people"] == 61 and sum(r["count"] for r in clv["churn_risk"]) == 61
    overview = client.get("/api/v1/value/overview", headers=auth).json()
    assert overview["orders"] == shop["orders"] and overview["rfm"] == rfm["rfm"]
    clusters = client.get("/api/v1/value/clusters", headers=auth).json()
    assert clusters["k"] >= 2 and sum(c["size"] for c in clusters["clusters"]) == 61


def test_people_filters_sorts_and_one_persons_value(client, auth, shop):
    winback = client.get(
        "/api/v1/value/people", params={"segment": "general_winback", "limit": 200}, headers=auth
    ).json()
    assert winback["total"] >= 20 and {p["rfm_segment"] for p in winback["items"]} == {"general_winback"}
    by_clv = client.get("/api/v1/value/people", params={"sort": "clv", "limit": 5}, headers=auth).json()["items"]
    assert [p["clv"] for p in by_clv] == sorted((p["clv"] for p in by_clv), reverse=True)
    assert by_clv[0]["name"].startswith("忠诚")

    loyal = member(client, auth, "L04")
    got = client.get(f"/api/v1/value/people/{loyal}", headers=auth).json()
    assert got["name"] == "忠诚4" and got["value"]["rfm_segment"] == "important_value"
    assert {c["category"] for c in got["repurchase"]} == {"咖啡豆", "滤纸"} and got["share_link"] is None
    recs = client.get(f"/api/v1/value/people/{member(client, auth, 'BEANS-ONLY')}/recommendations", headers=auth)
    assert recs.json()["items"][0]["product_id"] == "F01"


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"segment": "vip_ish"}, "segment"),
        ({"tier": "gold"}, "tier"),
        ({"sort": "shoe_size"}, "sort"),
        ({"limit": 0}, "limit"),
        ({"limit": 10_000}, "limit"),
        ({"offset": -1}, "offset"),
        ({"cluster": 500}, "cluster"),
    ],
)
def test_bad_people_queries_name_the_field(client, auth, shop, params, field):
    response = client.get("/api/v1/value/people", params=params, headers=auth)
    assert response.status_code == 422
    assert field in [f["field"] for f in response.json()["error"]["fields"]]


def test_repurchase_basket_and_not_found(client, auth, shop):
    due = client.get("/api/v1/value/repurchase", params={"status": "overdue", "limit": 200}, headers=auth).json()
    assert due["total"] == len(due["items"]) > 0 and due["categories"]
    assert all(r["next_expected"] for r in due["items"])
    assert client.get("/api/v1/value/repurchase", params={"status": "whenever"}, headers=auth).status_code == 422
    rules = client.get("/api/v1/value/basket/rules", params={"product": "B01"}, headers=auth).json()
    assert rules["total"] >= 1 and rules["items"][0]["consequent"]["product_id"] == "F01"
    together = client.get("/api/v1/value/basket/together", params={"product": "B01"}, headers=auth).json()
    assert together["items"][0]["name"] == "V60 滤纸"
    assert client.get("/api/v1/value/basket/together", params={"product": "NOPE"}, headers=auth).status_code == 404
    products = client.get("/api/v1/value/basket/products", headers=auth).json()
    assert {p["product_id"] for p in products["items"]} == {"B01", "F01", "D01", "G03"}
    assert client.get("/api/v1/value/people/987654", headers=auth).status_code == 404
    assert client.get("/api/v1/value/referrals/tree", params={"root": 987654}, headers=auth).status_code == 404


def test_settings_weights_and_their_bad_values(client, auth, shop):
    assert client.get("/api/v1/value/settings", headers=auth).json()["social_weight"] == 0.7
    for body, field in (
        ({"commercial_weight": -1}, "commercial_weight"),
        ({"commercial_weight": 0, "social_weight": 0}, "social_weight"),
        ({"window_days": "a year"}, "window_days"),
        ({"shoe_size": 42}, "shoe_size"),
    ):
        response = client.put("/api/v1/value/settings", json=body, headers=auth)
        assert response.status_code == 422, body
        assert field in [f["field"] for f in response.json()["error"]["fields"]]
    saved = client.put("/api/v1/value/settings", json={"commercial_weight": 7, "social_weight": 3}, headers=auth)
    assert saved.status_code == 200 and saved.json()["rescored"] == 61
    top = client.get("/api/v1/value/people", params={"limit": 1}, headers=auth).json()["items"][0]
    assert top["value_score"] == pytest.approx(70.0)  # no referrals yet: the commercial part only


def test_share_links_from_the_api(client, auth, shop):
    loyal = member(client, auth, "L02")
    refused = client.post(f"/api/v1/value/people/{loyal}/share-link", headers=auth)
    assert refused.status_code == 422 and refused.json()["error"]["fields"][0]["field"] == "destination_url"
    assert client.post("/api/v1/value/people/987654/share-link", headers=auth).status_code == 404
    client.put("/api/v1/value/settings", json={"share_url": "https://shop.example/invite"}, headers=auth)
    made = client.post(f"/api/v1/value/people/{loyal}/share-link", headers=auth)
    assert made.status_code == 201 and made.json()["created"]
    link = made.json()["link"]
    assert link["destination_url"] == "https://shop.example/invite" and link["pass_visitor_id"]
    again = client.post(f"/api/v1/value/people/{loyal}/share-link", headers=auth)
    assert again.status_code == 200 and again.json()["link"]["id"] == link["id"]
    assert client.get(f"/api/v1/value/people/{loyal}", headers=auth).json()["share_link"]["link_id"] == link["id"]


def test_lookalike_from_a_seed_segment_to_a_new_segment(client, auth, shop):
    seed = client.post(
        "/api/v1/segments",
        json={
            "name": "重要价值",
            "rule": {"type": "tag", "tag": "rfm_segment", "op": "eq", "value": "important_value"},
        },
        headers=auth,
    )
    assert seed.status_code == 201, seed.text
    seed_id = seed.json()["id"]
    client.post(f"/api/v1/segments/{seed_id}/recompute", headers=auth)
    for body, field in (
        ({"seed_segment_id": 424242}, "seed_segment_id"),
        ({"seed_segment_id": seed_id, "top_n": 0}, "top_n"),
        ({"seed_segment_id": seed_id, "threshold": -0.5}, "threshold"),
        ({}, "seed_segment_id"),
    ):
        response = client.post("/api/v1/value/lookalike", json=body, headers=auth)
        assert response.status_code == 422, (body, response.text)
        assert field in [f["field"] for f in response.json()["error"]["fields"]]
    made = client.post("/api/v1/value/lookalike", json={"seed_segment_id": seed_id, "top_n": 6}, headers=auth)
    assert made.status_code == 201, made.text
    body = made.json()
    assert body["audience"] == 6 and 0 <= body["auc"] <= 1 and body["features"]
    segment = client.get(f"/api/v1/segments/{body['segment_id']}", headers=auth).json()
    assert segment["member_count"] == 6
    assert client.get("/api/v1/value/lookalikes", headers=auth).json()[0]["id"] == body["id"]


def test_a_queued_run_is_done_by_the_worker(client, auth, runtime, shop):
    queued = client.post("/api/v1/value/run", headers=auth)
    assert queued.status_code == 202 and queued.json()["status"] == "queued"
    deadline = time.monotonic() + 60
    while True:
        status = client.get("/api/v1/value/status", headers=auth).json()
        if status["latest"]["id"] == queued.json()["id"] and status["latest"]["status"] == "succeeded":
            break
        assert time.monotonic() < deadline, status
        time.sleep(0.1)
    assert status["last_success"]["id"] == queued.json()["id"] and not status["pending"]
    runs = client.get("/api/v1/value/runs", headers=auth).json()
    assert [r["id"] for r in runs[:2]] == [queued.json()["id"], shop["id"]]


def test_scopes_guard_people_and_changes(client, runtime, ws, shop):
    reader = key_with(runtime, ws, "analytics:read")
    assert client.get("/api/v1/value/rfm", headers=reader).status_code == 200
    assert client.get("/api/v1/value/people", headers=reader).status_code == 403  # names need profiles:read
    assert client.post("/api/v1/value/run", headers=reader).status_code == 403
    assert client.put("/api/v1/value/settings", json={"koc_top": 3}, headers=reader).status_code == 403
    assert client.get("/api/v1/value/rfm").status_code == 401


def test_another_workspace_sees_none_of_it(client, auth, runtime, shop):
    with runtime.db.session() as s:
        other = workspaces.create_workspace(s, "Other", slug="other").id
    theirs = key_with(runtime, other, "analytics:read", "profiles:read", "segments:write")
    loyal = member(client, auth, "L00")
    assert client.get("/api/v1/value/status", headers=theirs).json()["last_success"] is None
    assert client.get("/api/v1/value/rfm", headers=theirs).json()["rfm"] is None
    assert client.get(f"/api/v1/value/people/{loyal}", headers=theirs).status_code == 404
    assert client.get("/api/v1/value/people", headers=theirs).json()["total"] == 0


# --- console --------------------------------------------------------------------------------------------------


@pytest.fixture
def console(client, first_run):
    response = client.post("/console/login", data={"email": first_run.email, "password": first_run.password})
    assert response.status_code == 303
    return client


def csrf(console, path: str) -> str:
    return CSRF_RE.search(console.get(path).text).group(1)


def test_every_value_page_shows_the_shop(console, auth, shop):
    page = console.get("/console/value")
    assert page.status_code == 200
    html = page.text
    assert "客户价值" in html and "重要价值客户" in html and 'data-segment="important_value"' in html
    assert 'href="/console/value/people?segment=important_value"' in html and "价值金字塔" in html
    assert 'id="chart-pyramid"' in html and 'id="chart-churn"' in html
    cell = re.search(r'data-segment="important_value".*?data-count>([\d,]+)<', html, re.S).group(1)
    rfm = console.get("/api/v1/value/rfm", headers=auth).json()
    assert int(cell.replace(",", "")) == next(
        c["customers"] for c in rfm["rfm"]["grid"] if c["segment"] == "important_value"
    )

    people = console.get("/console/value/people", params={"segment": "important_value"}).text
    assert "忠诚" in people and "一次" not in people
    assert "高频" in console.get("/console/value/clusters").text
    assert "咖啡豆" in console.get("/console/value/repurchase", params={"status": "overdue"}).text
    assert "V60 滤纸" in console.get("/console/value/basket", params={"product": "B01"}).text
    assert 'id="kocs"' in console.get("/console/value/social").text
    assert "种子人群" in console.get("/console/value/lookalike").text
    console.cookies.set("sy_lang", "en")
    english = console.get("/console/value")
    assert "Important value" in english.text and "Customer value" in english.text


def test_the_console_runs_saves_settings_and_hands_out_share_links(console, auth, shop):
    token = csrf(console, "/console/value/settings")
    bad = console.post("/console/value/settings", data={"csrf": token, "commercial_weight": "-1", "social_weight": "1"})
    assert bad.status_code == 422 and "权重须为不小于 0 的数" in bad.text
    good = console.post(
        "/console/value/settings",
        data={
            "csrf": token,
            "commercial_weight": "3",
            "social_weight": "7",
            "window_days": "180",
            "pyramid_method": "customer_share",
            "koc_top": "10",
            "share_url": "https://shop.example/i",
            "utc_offset_hours": "8",
        },
    )
    assert good.status_code == 303 and "saved=1" in good.headers["location"]
    assert console.get("/api/v1/value/settings", headers=auth).json()["window_days"] == 180

    queued = console.post("/console/value/run", data={"csrf": token})
    assert queued.status_code == 303 and queued.headers["location"] == "/console/value?queued=1"

    loyal = member(console, auth, "L03")
    profile = console.get(f"/console/profiles/{loyal}").text
    assert f'data-value-src="/console/value/people/{loyal}/card' in profile
    card = console.get(f"/console/value/people/{loyal}/card").text
    assert 'data-value="segment"' in card and "重要价值客户" in card and 'id="share-link-get"' in card
    made = console.post(
        f"/console/value/people/{loyal}/share-link", data={"csrf": token, "next": f"/console/profiles/{loyal}"}
    )
    assert made.status_code == 303 and made.headers["location"] == f"/console/profiles/{loyal}"
    assert "data-share-link" in console.get(f"/console/value/people/{loyal}/card").text
    assert console.get("/console/value/people/987654").status_code == 404


def test_a_lookalike_from_the_console_form(console, auth, shop):
    seed = console.post(
        "/api/v1/segments",
        json={
            "name": "重要价值",
            "rule": {"type": "tag", "tag": "rfm_segment", "op": "eq", "value": "important_value"},
        },
        headers=auth,
    ).json()["id"]
    console.post(f"/api/v1/segments/{seed}/recompute", headers=auth)
    token = csrf(console, "/console/value/lookalike")
    bad = console.post("/console/value/lookalike", data={"csrf": token, "seed_segment_id": str(seed), "top_n": "0"})
    assert bad.status_code == 422 and 'data-field="top_n"' in bad.text
    made = console.post("/console/value/lookalike", data={"csrf": token, "seed_segment_id": str(seed), "top_n": "4"})
    assert made.status_code == 303
    page = console.get(made.headers["location"]).text
    assert "data-made=" in page and "AUC" in page


# --- CLI ------------------------------------------------------------------------------------------------------


def test_the_cli_runs_and_reads_value(tmp_path, monkeypatch):
    from siyu.bootstrap import initialize
    from siyu.cli import common
    from siyu.cli.main import app
    from siyu.events.ingest import Sender
    from siyu.runtime import Runtime

    monkeypatch.setenv("SIYU_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("SIYU_BASE_URL", "http://sy.test")
    for name in ("SIYU_DATABASE_URL", "SIYU_EVENTS_PATH", "SIYU_SECRET_KEY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(common, "_db", None)
    rt = Runtime.create(common.settings())
    try:
        initialize(rt.settings, rt.db, demo=False)
        with rt.db.session() as s:
            source = sources.create_source(s, 1, "商城", "website").source.id
        for chunk in value_data.chunks(value_data.shop(loyal=8, occasional=8, one_time=8)):
            rt.ingestor.ingest_batch(Sender(1, source), {"batch": chunk})
        rt.stitch_now()
    finally:
        rt.close()
    runner = CliRunner()
    ran = runner.invoke(app, ["value", "run"])
    assert ran.exit_code == 0, ran.output
    assert "succeeded" in ran.output and "people 25" in ran.output
    rfm = runner.invoke(app, ["value", "rfm"])
    assert rfm.exit_code == 0 and "重要价值客户" in rfm.output and "VIP" in rfm.output
    shown = runner.invoke(app, ["value", "together", "B01"])
    assert shown.exit_code == 0 and "V60 滤纸" in shown.output
    bad = runner.invoke(app, ["value", "settings", "--commercial-weight", "-1"])
    assert bad.exit_code == 1 and "commercial_weight" in bad.output
    assert runner.invoke(app, ["value", "person", "987654"]).exit_code == 1
    status = runner.invoke(app, ["value", "status"])
    assert status.exit_code == 0 and "succeeded" in status.output
    unknown_seed = runner.invoke(app, ["value", "lookalike", "4242", "--top", "5"])
    assert unknown_seed.exit_code == 1 and "seed_segment_id" in unknown_seed.output
