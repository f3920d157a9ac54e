"""One ID from the outside: the REST API (/api/v1/identity), the `siyu identity` CLI and the console page.

People come into being the real way (Segment calls through the tracking API, stitched by the runtime);
then they are looked up, shown, identified server-side, unmerged and configured, and every bad input
gets an error naming its field.
"""

from __future__ import annotations

import base64
import html
import re
import uuid

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from siyu.i18n import t
from siyu.identity import service as ids
from siyu.sources import service as sources
from siyu.workspaces import service as workspaces
from siyu.workspaces.models import Workspace

CSRF = re.compile(r'name="csrf" value="([^"]+)"')


@pytest.fixture(autouse=True)
def cheap_password_hashing(monkeypatch):
    from argon2 import PasswordHasher

    from siyu import security

    monkeypatch.setattr(security, "_hasher", PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))


def send(client, rt, type_: str, kind: str = "website", **message) -> str:
    with rt.db.session() as session:
        key = sources.create_source(session, 1, f"{kind}-{uuid.uuid4().hex[:6]}", kind).write_key
    message.setdefault("messageId", f"m-{uuid.uuid4().hex}")
    auth = "Basic " + base64.b64encode(f"{key}:".encode()).decode()
    response = client.post(f"/v1/{type_}", json=message, headers={"Authorization": auth})
    assert response.status_code == 200, response.text
    return message["messageId"]


def fields(response) -> list[str]:
    return [f["field"] for f in response.json()["error"]["fields"]]


@pytest.fixture
def wang(client, runtime) -> dict[str, int]:
    """Member M-7 (CRM, with a phone) who browsed anonymously before logging in: two persons, merged."""
    send(client, runtime, "identify", kind="crm", userId="M-7", traits={"phone": "13912345678"})
    send(client, runtime, "page", anonymousId="cookie-9", name="Home")
    runtime.stitch_now()
    with runtime.db.session() as session:
        member, visitor = (
            ids.lookup(session, 1, "member_id", "M-7"),
            ids.lookup(session, 1, "visitor_cookie", "cookie-9"),
        )
    send(client, runtime, "identify", userId="M-7", anonymousId="cookie-9")
    runtime.stitch_now()
    return {"member": member, "visitor": visitor}


# --- look up and read ----------------------------------------------------------------------------------------


def test_look_a_person_up_by_any_identifier_in_any_spelling(client, auth, wang):
    response = client.get(
        "/api/v1/identity/lookup", params={"type": "phone", "value": "+86 139-1234-5678"}, headers=auth
    )
    assert response.status_code == 200, response.text
    person = response.json()
    assert person["super_id"] == wang["member"]
    assert person["merged_ids"] == [wang["visitor"]]
    assert [(i["type"], i["value"]) for i in person["identifiers"]] == [
        ("member_id", "M-7"),
        ("phone", "+8613912345678"),
        ("visitor_cookie", "cookie-9"),
    ]
    (merge,) = person["merges"]
    assert (merge["survivor_id"], merge["merged_id"], merge["can_unmerge"]) == (wang["member"], wang["visitor"], True)


@pytest.mark.parametrize(
    ("params", "status", "field"),
    [
        ({"type": "phone", "value": "13900000000"}, 404, None),
        ({"type": "shoe_size", "value": "42"}, 422, "type"),
        ({"type": "phone", "value": "not a phone"}, 422, "value"),
        ({"type": "phone"}, 422, "value"),
        ({"value": "x"}, 422, "type"),
    ],
)
def test_lookup_errors_name_the_field(client, auth, params, status, field):
    response = client.get("/api/v1/identity/lookup", params=params, headers=auth)
    assert response.status_code == status, response.text
    if field:
        assert fields(response) == [field]


def test_a_person_with_identifiers_merge_log_and_event_count(client, auth, wang):
    response = client.get(f"/api/v1/identity/persons/{wang['member']}", headers=auth)
    assert response.status_code == 200
    assert response.json()["events"] == 3
    moved = client.get(f"/api/v1/identity/persons/{wang['visitor']}", headers=auth).json()
    assert moved["super_id"] == wang["member"]  # a merged-away super ID answers with where it lives now

    assert client.get("/api/v1/identity/persons/999999", headers=auth).status_code == 404
    bad = client.get("/api/v1/identity/persons/0", headers=auth)
    assert bad.status_code == 422 and fields(bad) == ["super_id"]


def test_other_workspaces_people_are_not_found(client, auth, runtime, wang):
    with runtime.db.session() as session:
        other = workspaces.create_workspace(session, "Other brand").id
        key = workspaces.create_api_key(session, other, "theirs").secret
    theirs = {"Authorization": f"Bearer {key}"}
    assert client.get(f"/api/v1/identity/persons/{wang['member']}", headers=theirs).status_code == 404
    lookup = client.get("/api/v1/identity/lookup", params={"type": "member_id", "value": "M-7"}, headers=theirs)
    assert lookup.status_code == 404


# --- identify server-side -------------------------------------------------------------------------------------------


def test_a_server_side_identify_links_and_makes_earlier_short_link_clicks_known(client, auth, runtime):
    visit = client.get("/coffee", headers={"User-Agent": "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X)"})
    cookie = re.match(r"sy_vid=([^;]+)", visit.headers["set-cookie"]).group(1)
    runtime.stitch_now()
    (click,) = runtime.store.query("SELECT click_id FROM clicks WHERE visitor_id = ?", [cookie])[0]

    response = client.post(
        "/api/v1/identity/resolve",
        json={
            "identifiers": [{"type": "member_id", "value": "M-55"}, ["visitor_cookie", cookie]],
            "event_ref": "pos-1",
        },
        headers=auth,
    )
    assert response.status_code == 200, response.text
    person = response.json()["super_id"]
    assert response.json()["merged"] == [] and response.json()["refused"] == []
    assert runtime.store.event_ids_of(1, person) == [("click", click)]


def test_identify_reports_merges_and_refusals(client, auth, wang):
    body = {"identifiers": [["member_id", "M-8"], ["phone", "13912345678"]]}
    response = client.post("/api/v1/identity/resolve", json=body, headers=auth)
    assert response.status_code == 200
    (refused,) = response.json()["refused"]  # one phone number cannot have two member ids
    assert refused["kind"] == "unique" and refused["via"] == ["phone", "+8613912345678"]
    assert refused["other_person_id"] == wang["member"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"identifiers": [["phone", "13900000001"], ["phone", "12"]]}, "identifiers[1].value"),
        ({"identifiers": [{"type": "nope", "value": "x"}]}, "identifiers[0].type"),
        ({"identifiers": [["phone"]]}, "identifiers[0]"),
        ({"identifiers": "phone"}, "identifiers"),
        ({"identifiers": [], "event_ref": "x" * 201}, "event_ref"),
        ({"identifiers": [], "extra": 1}, "extra"),
    ],
)
def test_identify_errors_name_the_field(client, auth, body, field):
    response = client.post("/api/v1/identity/resolve", json=body, headers=auth)
    assert response.status_code == 422, response.text
    assert field in fields(response)


# --- unmerge ---------------------------------------------------------------------------------------------------------


def test_unmerge_through_the_api_moves_the_events_back(client, auth, runtime, wang):
    response = client.post(f"/api/v1/identity/persons/{wang['visitor']}/unmerge", headers=auth)
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["kept"]["super_id"], body["restored"]["super_id"]) == (wang["member"], wang["visitor"])
    assert body["moved"] == [["visitor_cookie", "cookie-9"]]
    assert len(runtime.store.event_ids_of(1, wang["visitor"])) == 1  # the anonymous page view
    assert len(runtime.store.event_ids_of(1, wang["member"])) == 2

    again = client.post(f"/api/v1/identity/persons/{wang['visitor']}/unmerge", headers=auth)
    assert again.status_code == 409 and fields(again) == ["person_id"]
    assert client.post("/api/v1/identity/persons/999999/unmerge", headers=auth).status_code == 404
    merges = client.get("/api/v1/identity/merges", headers=auth).json()["merges"]
    assert [m["action"] for m in merges] == ["unmerge", "merge"]
    assert merges[0]["actor"].startswith("key:")


# --- guard rails and configuration --------------------------------------------------------------------------------------


def test_conflicts_and_quarantined_values_are_listed(client, auth, runtime):
    for n in range(5):  # a shop tablet's cookie, typed in with five different members
        send(client, runtime, "identify", userId=f"M-{n}", anonymousId="shop-tablet")
    runtime.stitch_now()
    conflicts = client.get("/api/v1/identity/conflicts", params={"limit": 2}, headers=auth).json()["conflicts"]
    assert len(conflicts) == 2 and {c["kind"] for c in conflicts} == {"unique"}
    quarantined = client.get("/api/v1/identity/quarantine", headers=auth).json()["quarantined"]
    assert quarantined == [{"type": "visitor_cookie", "value": "shop-tablet", "people": 4}]
    assert client.get("/api/v1/identity/conflicts", params={"limit": 0}, headers=auth).status_code == 422


def test_identifier_types_are_listed_and_configured(client, auth, runtime):
    listed = client.get("/api/v1/identity/types", headers=auth).json()["types"]
    assert [t_["name"] for t_ in listed][:3] == ["member_id", "unionid", "phone"]

    response = client.put("/api/v1/identity/types/crm_id", json={"priority": 5, "unique": True}, headers=auth)
    assert response.status_code == 200, response.text
    assert response.json()["max_values"] == 1
    send(client, runtime, "identify", userId="M-1", context={"externalIds": [{"type": "crm_id", "id": "C-9"}]})
    runtime.stitch_now()
    found = client.get("/api/v1/identity/lookup", params={"type": "crm_id", "value": "C-9"}, headers=auth).json()
    assert [i["type"] for i in found["identifiers"]] == ["crm_id", "member_id"]  # priority 5 comes first

    bad = client.put("/api/v1/identity/types/phone", json={"priority": -1, "colour": "red"}, headers=auth)
    assert bad.status_code == 422 and sorted(fields(bad)) == ["colour", "priority"]
    bad_name = client.put("/api/v1/identity/types/Bad-Name", json={"priority": 1}, headers=auth)
    assert bad_name.status_code == 422 and fields(bad_name) == ["name"]
    not_object = client.put("/api/v1/identity/types/phone", json=[1], headers=auth)
    assert not_object.status_code == 422


def test_keys_without_the_identity_scopes_are_refused(client, runtime):
    with runtime.db.session() as session:
        ws = session.scalar(select(Workspace.id))
        key = workspaces.create_api_key(session, ws, "links only", ["links:read"]).secret
    headers = {"Authorization": f"Bearer {key}"}
    response = client.get("/api/v1/identity/types", headers=headers)
    assert response.status_code == 403 and "identity:read" in response.json()["error"]["message"]
    with runtime.db.session() as session:
        key = workspaces.create_api_key(session, ws, "reader", ["identity:read"]).secret
    reader = {"Authorization": f"Bearer {key}"}
    assert client.get("/api/v1/identity/types", headers=reader).status_code == 200
    assert client.post("/api/v1/identity/resolve", json={"identifiers": []}, headers=reader).status_code == 403


# --- the console page -------------------------------------------------------------------------------------------------


def sign_in(client, first_run) -> str:
    response = client.post("/console/login", data={"email": first_run.email, "password": first_run.password})
    assert response.status_code == 303, response.text
    return CSRF.search(client.get("/console/identity").text).group(1)


def test_the_console_page_shows_a_person_merges_and_the_rules_and_unmerges(client, first_run, wang):
    csrf = sign_in(client, first_run)
    page = client.get("/console/identity", params={"type": "phone", "value": "139 1234 5678"})
    assert page.status_code == 200
    assert f'data-person="{wang["member"]}"' in page.text
    assert f'href="/console/profiles/{wang["member"]}"' in page.text
    assert html.escape(t("nav.identity", "zh-CN")) in page.text
    assert f'action="/console/identity/persons/{wang["visitor"]}/unmerge"' in page.text
    assert 'data-type="visitor_cookie"' in page.text

    response = client.post(f"/console/identity/persons/{wang['visitor']}/unmerge", data={"csrf": csrf})
    assert response.status_code == 303
    after = client.get(response.headers["location"])
    assert f'data-person="{wang["visitor"]}"' in after.text
    assert t("identity.done.unmerged", "zh-CN") in after.text
    assert f'action="/console/identity/persons/{wang["visitor"]}/unmerge"' not in after.text

    again = client.post(f"/console/identity/persons/{wang['visitor']}/unmerge", data={"csrf": csrf})
    assert again.status_code == 409 and 'data-error="unmerge"' in again.text


def test_the_console_reports_bad_lookups_and_bad_type_settings_by_field(client, first_run):
    csrf = sign_in(client, first_run)
    bad = client.get("/console/identity", params={"type": "phone", "value": "12"})
    assert bad.status_code == 422 and 'data-error="lookup_value"' in bad.text
    unknown = client.get("/console/identity", params={"type": "phone", "value": "13900000009"})
    assert 'data-result="none"' in unknown.text

    response = client.post(
        "/console/identity/types", data={"csrf": csrf, "name": "crm_id", "priority": "abc", "max_people": "0"}
    )
    assert response.status_code == 422
    assert 'data-error="priority"' in response.text and 'data-error="max_people"' in response.text
    assert 'value="crm_id"' in response.text  # what was typed is kept

    saved = client.post(
        "/console/identity/types", data={"csrf": csrf, "name": "crm_id", "priority": "5", "unique": "1"}
    )
    assert saved.status_code == 303
    edit = client.get("/console/identity", params={"edit": "crm_id"})
    assert 'name="priority" value="5"' in edit.text


def test_analysts_see_the_page_but_cannot_unmerge(client, runtime, first_run, wang):
    with runtime.db.session() as session:
        user = workspaces.create_user(session, "analyst@example.com", "password-123", "A")
        workspaces.add_member(session, 1, user.id, "analyst")
    response = client.post("/console/login", data={"email": "analyst@example.com", "password": "password-123"})
    assert response.status_code == 303
    page = client.get("/console/identity", params={"super_id": wang["member"]})
    assert page.status_code == 200 and "/unmerge" not in page.text
    csrf = CSRF.search(page.text).group(1)
    refused = client.post(f"/console/identity/persons/{wang['visitor']}/unmerge", data={"csrf": csrf})
    assert refused.status_code == 403


# --- the command line ---------------------------------------------------------------------------------------------------


@pytest.fixture
def siyu(tmp_path, monkeypatch):
    from siyu.cli import common
    from siyu.cli.main import app

    monkeypatch.setenv("SIYU_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("SIYU_BASE_URL", "http://sy.test")
    for name in ("SIYU_DATABASE_URL", "SIYU_EVENTS_PATH", "SIYU_SECRET_KEY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(common, "_db", None)
    runner = CliRunner()

    def run(*args, code: int = 0, stdin: str | None = None):
        result = runner.invoke(app, [str(a) for a in args], input=stdin)
        assert result.exit_code == code, result.output
        assert "Traceback" not in result.output
        return result

    run("init", "--no-demo")
    return run


@pytest.fixture
def cli_people(siyu):
    """Member M-7 and the browser that was theirs, merged, stored and stitched by a stopped server."""
    from siyu.config import Settings
    from siyu.events.ingest import Sender
    from siyu.runtime import Runtime

    rt = Runtime.create(Settings.from_env())
    with rt.db.session() as session:
        src = sources.create_source(session, 1, "web", "website").source.id
    sender = Sender(1, src)
    rt.ingestor.ingest_one(sender, "identify", {"userId": "M-7", "traits": {"phone": "13912345678"}})
    rt.ingestor.ingest_one(sender, "page", {"anonymousId": "cookie-9", "name": "Home"})
    rt.stitch_now()
    with rt.db.session() as session:
        people = {"member": ids.lookup(session, 1, "member_id", "M-7")}
        people["visitor"] = ids.lookup(session, 1, "visitor_cookie", "cookie-9")
    rt.ingestor.ingest_one(sender, "identify", {"userId": "M-7", "anonymousId": "cookie-9"})
    rt.stitch_now()
    rt.close()
    return people


def test_cli_lookup_show_and_unmerge(siyu, cli_people):
    found = siyu("identity", "lookup", "phone", "139 1234 5678")
    assert f"super ID {cli_people['member']}" in found.output and "+8613912345678" in found.output
    assert f"siyu identity unmerge {cli_people['visitor']}" in found.output

    shown = siyu("identity", "show", cli_people["visitor"], "--json")
    assert '"super_id": ' + str(cli_people["member"]) in shown.output

    split = siyu("identity", "unmerge", cli_people["visitor"])
    assert "visitor_cookie" in split.output and "cookie-9" in split.output
    siyu("identity", "unmerge", cli_people["visitor"], code=1)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("identity", "lookup", "shoe_size", "42"), "error: type: unknown identifier type 'shoe_size'"),
        (("identity", "lookup", "phone", "12"), "error: value:"),
        (("identity", "lookup", "phone", "13900000000"), "error: no person holds this phone"),
        (("identity", "show", "999999"), "error: person 999999"),
        (("identity", "unmerge", "999999"), "error: person 999999"),
        (
            ("identity", "types", "phone", "--priority", "5000"),
            "error: priority: must be a whole number from 0 to 1000",
        ),
        (("identity", "types", "Bad-Name", "--priority", "5"), "error: name:"),
        (("identity", "types", "crm_id"), "error: say what to change"),
    ],
)
def test_cli_errors_are_one_line_naming_the_field(siyu, args, message):
    result = siyu(*args, code=1)
    assert message in result.output


def test_cli_types_conflicts_stitch_rebuild_and_report(siyu, cli_people):
    siyu("identity", "types", "crm_id", "--priority", "5", "--unique", "--block", "none-given")
    listed = siyu("identity", "types")
    assert re.search(r"crm_id\s+5\s+yes\s+1", listed.output)
    assert "0 conflict(s)" in siyu("identity", "conflicts").output
    assert "0 event(s)" in siyu("identity", "stitch").output

    rebuilt = siyu("identity", "rebuild", "--yes", "--json")
    assert '"persons": 1' in rebuilt.output and '"records": 3' in rebuilt.output
    after = siyu("identity", "lookup", "visitor_cookie", "cookie-9", "--json")
    assert '"M-7"' in after.output

    report = siyu("identity", "report", "--people", "300", "--seed", "3")
    assert "precision" in report.output and "recall" in report.output
