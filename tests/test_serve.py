"""`siyu serve` as users run it: Granian in RSGI mode, redirects answered natively, everything else
through the ASGI bridge (siyu/rsgi.py), clicks enriched in a child process, drained on SIGINT."""

from __future__ import annotations

import gzip
import io
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import duckdb
import httpx
import orjson
import pytest
import segno
from conftest import free_port

WECHAT_IOS = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Mobile/15E148 MicroMessenger/8.0.49(0x18003129) NetType/WIFI Language/zh_CN"
)
CHROME = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0 Safari/537.36"


@dataclass
class Served:
    url: str
    api_key: str
    proc: subprocess.Popen
    data_dir: Path
    log: Path

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}"}


def _siyu(*args: str) -> list[str]:
    return [sys.executable, "-c", "from siyu.cli.main import app; app()", *args]


@pytest.fixture(scope="module")
def served(tmp_path_factory) -> Iterator[Served]:
    data_dir = tmp_path_factory.mktemp("serve")
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("SIYU_")}
    env.update(SIYU_DATA_DIR=str(data_dir), SIYU_BASE_URL=f"http://127.0.0.1:{port}")
    init = subprocess.run(_siyu("init", "--no-demo"), env=env, capture_output=True, text=True, timeout=120)
    assert init.returncode == 0, init.stderr
    api_key = re.search(r"API key\s*:\s*(\S+)", init.stdout).group(1)
    log = data_dir / "server.log"
    with log.open("w") as out:
        proc = subprocess.Popen(
            _siyu("serve", "--host", "127.0.0.1", "--port", str(port), "--no-demo"),
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                break
        except httpx.TransportError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.fail("siyu serve did not start:\n" + log.read_text()[-3000:])
        time.sleep(0.2)
    server = Served(url, api_key, proc, data_dir, log)
    try:
        yield server
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)


def _create(served: Served, **fields) -> dict:
    response = httpx.post(f"{served.url}/api/v1/links", json=fields, headers=served.auth, timeout=10)
    assert response.status_code == 201, response.text
    return response.json()


def test_redirect_sets_the_visitor_cookie_and_forwards_the_query(served):
    link = _create(served, destination_url="https://example.com/landing", slug="rsgi-go")
    response = httpx.get(f"{served.url}/rsgi-go?from=poster", headers={"User-Agent": CHROME})
    assert response.status_code == 302
    assert response.headers["location"] == "https://example.com/landing?from=poster"
    assert re.match(r"sy_vid=[A-Za-z0-9_-]{16}; Max-Age=\d+; Path=/", response.headers["set-cookie"])
    assert response.headers["cache-control"].startswith("private")
    assert link["slug"] == "rsgi-go"


def test_cached_redirects_are_answered_by_granians_thread_and_stay_correct(served):
    """The fast path (siyu.rsgi.install_fast_path) is on under `siyu serve`; what it must not answer
    (a link with a click limit, an edited link before the cache reloads it) still comes out right."""
    assert httpx.get(f"{served.url}/healthz").json()["redirect_fast_path"] is True
    link = _create(served, destination_url="https://example.com/v1", slug="rsgi-fast")
    with httpx.Client(headers={"User-Agent": CHROME}) as client:
        for _ in range(20):  # the first visit loads the cache (event loop), the rest are answered at once
            assert client.get(f"{served.url}/rsgi-fast").headers["location"] == "https://example.com/v1"
        edited = client.patch(
            f"{served.url}/api/v1/links/{link['id']}",
            json={"destination_url": "https://example.com/v2"},
            headers=served.auth,
        )
        assert edited.status_code == 200, edited.text
        assert client.get(f"{served.url}/rsgi-fast").headers["location"] == "https://example.com/v2"

        _create(served, destination_url="https://example.com/few", slug="rsgi-limit", max_clicks=3)
        statuses = [client.get(f"{served.url}/rsgi-limit").status_code for _ in range(6)]
    assert statuses == [302, 302, 302, 410, 410, 410]


def test_wechat_gets_the_guidance_page_and_unknown_slugs_a_404_page(served):
    _create(served, destination_url="https://example.com/shop", slug="rsgi-wx", anti_block_platforms=["wechat"])
    page = httpx.get(f"{served.url}/rsgi-wx", headers={"User-Agent": WECHAT_IOS, "Accept-Language": "zh-CN"})
    assert page.status_code == 200
    assert page.headers["content-type"] == "text/html; charset=utf-8"
    assert "Safari" in page.text and "https://example.com/shop" in page.text
    missing = httpx.get(f"{served.url}/no-such-slug-here", headers={"User-Agent": CHROME})
    assert missing.status_code == 404
    assert "<html" in missing.text.lower()


def test_password_form_is_read_from_the_rsgi_body(served):
    _create(served, destination_url="https://example.com/secret", slug="rsgi-pw", password="open sesame")
    form = httpx.get(f"{served.url}/rsgi-pw", headers={"User-Agent": CHROME})
    assert form.status_code == 200 and "password" in form.text
    wrong = httpx.post(f"{served.url}/rsgi-pw", data={"password": "nope"}, headers={"User-Agent": CHROME})
    assert wrong.status_code == 401
    right = httpx.post(f"{served.url}/rsgi-pw", data={"password": "open sesame"}, headers={"User-Agent": CHROME})
    assert right.status_code == 303
    assert right.headers["location"] == "https://example.com/secret"


def test_api_errors_name_the_field_through_the_bridge(served):
    response = httpx.post(
        f"{served.url}/api/v1/links", json={"destination_url": "javascript:alert(1)"}, headers=served.auth, timeout=10
    )
    assert response.status_code == 422
    assert "destination_url" in response.text
    unauthorised = httpx.get(f"{served.url}/api/v1/links", timeout=10)
    assert unauthorised.status_code == 401


def test_percent_encoded_paths_reach_the_api_decoded(served):
    link = _create(served, destination_url="https://example.com/pct", slug="rsgi-pct")
    response = httpx.get(f"{served.url}/api/v1/links/%3{str(link['id'])[0]}{str(link['id'])[1:]}", headers=served.auth)
    assert response.status_code == 200
    assert response.json()["id"] == link["id"]


def test_multipart_upload_and_binary_response(served):
    buf = io.BytesIO()
    segno.make_qr("https://example.com/from-a-poster", error="h").save(buf, kind="png", scale=6)
    response = httpx.post(
        f"{served.url}/api/v1/qr/decode",
        files={"image": ("poster.png", buf.getvalue(), "image/png")},
        headers=served.auth,
        timeout=30,
    )
    assert response.status_code == 200, response.text
    assert "https://example.com/from-a-poster" in response.text
    link = _create(served, destination_url="https://example.com/qr", slug="rsgi-qr")
    png = httpx.get(f"{served.url}/api/v1/links/{link['id']}/qr.png", headers=served.auth, timeout=30)
    assert png.status_code == 200 and png.content.startswith(b"\x89PNG")


def test_oversized_bodies_are_refused_with_413(served):
    response = httpx.post(
        f"{served.url}/api/v1/links",
        content=b"x" * (13 * 1024 * 1024),
        headers={**served.auth, "Content-Type": "application/json"},
        timeout=30,
    )
    assert response.status_code == 413


def test_gzip_tracking_batch_through_the_bridge(served):
    source = httpx.post(
        f"{served.url}/api/v1/sources", json={"name": "site", "kind": "website"}, headers=served.auth, timeout=10
    )
    assert source.status_code == 201, source.text
    write_key = source.json()["write_key"]
    body = gzip.compress(orjson.dumps({"batch": [{"type": "track", "event": "Viewed", "anonymousId": "a-1"}]}))
    response = httpx.post(
        f"{served.url}/v1/batch",
        content=body,
        headers={"Content-Type": "application/json", "Content-Encoding": "gzip"},
        auth=(write_key, ""),
        timeout=10,
    )
    assert response.status_code == 200, response.text


def test_console_pages_and_static_files(served):
    login = httpx.get(f"{served.url}/console/login", timeout=10)
    assert login.status_code == 200 and "<form" in login.text
    css = httpx.get(f"{served.url}/console/static/app.css", timeout=10)
    assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")
    home = httpx.get(f"{served.url}/", timeout=10)
    assert home.status_code == 302 and home.headers["location"] == "/console/"


def test_streamed_csv_export_arrives_whole(served):
    link = _create(served, destination_url="https://example.com/csv", slug="rsgi-csv")
    for i in range(30):
        httpx.get(f"{served.url}/rsgi-csv?i={i}", headers={"User-Agent": CHROME})
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        export = httpx.get(f"{served.url}/api/v1/analytics/clicks.csv?link_id={link['id']}", headers=served.auth)
        if export.text.count("\n") >= 31:
            break
        time.sleep(0.3)
    assert export.status_code == 200
    assert export.headers["content-type"].startswith("text/csv")
    assert export.text.count("\n") == 31  # header + 30 clicks
    assert "enricher exited" not in served.log.read_text()


def test_sigint_drains_every_click_into_the_store(served):
    """Last: stops the module's server. Clicks served just before SIGINT must all be in DuckDB."""
    _create(served, destination_url="https://example.com/last", slug="rsgi-last")
    with httpx.Client() as client:
        for i in range(200):
            assert client.get(f"{served.url}/rsgi-last?n={i}", headers={"User-Agent": CHROME}).status_code == 302
    served.proc.send_signal(signal.SIGINT)
    assert served.proc.wait(60) == 0
    with duckdb.connect(str(served.data_dir / "events.duckdb"), read_only=True) as con:
        stored = con.execute("SELECT count(*) FROM clicks WHERE slug = 'rsgi-last'").fetchone()[0]
        enriched = con.execute(
            "SELECT count(*) FROM clicks WHERE slug = 'rsgi-last' AND browser = 'Chrome' AND os = 'Windows'"
        ).fetchone()[0]
    assert stored == 200
    assert enriched == 200
