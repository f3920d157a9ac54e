"""The README's promise in miniature: a fresh installation redirects its demo links and counts clicks."""

import time

import httpx

DESKTOP_CHROME = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36"


def test_demo_link_redirects_with_utm_and_counts_the_click(client, auth):
    response = client.get("/coffee", headers={"User-Agent": DESKTOP_CHROME})
    assert response.status_code == 302
    assert response.headers["location"].startswith("https://example.com/coffee?from=poster&utm_source=poster")
    assert "sy_vid=" in response.headers["set-cookie"]
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        report = client.get("/api/v1/analytics", headers=auth).json()
        if report["clicks"] == 1:
            break
        time.sleep(0.05)
    assert report["clicks"] == 1
    assert report["breakdowns"]["outcome"] == [{"value": "redirected", "clicks": 1, "unique_visitors": 1}]


def test_live_server_serves_real_http(live_server):
    response = httpx.get(f"{live_server.url}/coffee", headers={"User-Agent": DESKTOP_CHROME})
    assert response.status_code == 302
    assert response.headers["location"].startswith("https://example.com/coffee")
