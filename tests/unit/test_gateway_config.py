"""The API gateway's nginx.conf (``broker_config.nginx``) and its settings, as text: no
nginx here (tests/integration/test_api_gateway.py runs it)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from broker_config.nginx import (
    GatewayConfig,
    GatewayConfigError,
    GatewayTls,
    Upstream,
    parse_region_upstreams,
    parse_upstreams,
)
from contracts.topics import Region
from potr.gateway_settings import GatewaySettings

POOLS = (
    "au=10.0.1.1:8000,10.0.1.2:8000;us=10.0.2.1:8000,10.0.2.2:8000;es=10.0.3.1:8000,10.0.3.2:8000"
)


def _config(**changes: Any) -> GatewayConfig:
    fields: dict[str, Any] = {
        "listen_host": "0.0.0.0",
        "listen_port": 8080,
        "regions": parse_region_upstreams(POOLS),
        "identity": parse_upstreams("10.0.9.1:8000,10.0.9.2:8000"),
    }
    return GatewayConfig(**(fields | changes))


def _block(text: str, head: str) -> str:
    """The body of the ``head { ... }`` block (no nested blocks in those we read)."""
    match = re.search(re.escape(head) + r" \{\n(.*?)\n\s*\}", text, re.S)
    assert match is not None, f"no block {head!r}"
    return match.group(1)


def test_each_regions_paths_go_to_its_own_pool_and_identitys_to_identity() -> None:
    text = _config().render()
    for region, n in (("au", 1), ("us", 2), ("es", 3)):
        assert _block(text, f"location ^~ /api/v1/{region}/").strip() == (
            f"proxy_pass http://potr_{region};"
        )
        servers = re.findall(r"server (\S+) ", _block(text, f"upstream potr_{region}"))
        assert servers == [f"10.0.{n}.1:8000", f"10.0.{n}.2:8000"]
    assert "proxy_pass http://potr_identity;" in _block(text, "location ^~ /api/v1/auth/")
    assert "return 404;" in _block(text, "location /")


def test_each_regions_web_pages_go_to_its_own_pool() -> None:
    text = _config().render()
    for region in ("au", "us", "es"):
        assert _flat(_block(text, f"location ^~ /ui/{region}/")) == _page_pool(f"potr_{region}")
        # Without the slash: no page there, and no 301 from nginx to one.
        assert _block(text, f"location = /ui/{region}").strip() == "return 404;"


PORTAL_EXACT = ("/", "/login", "/pin-login", "/logout", "/language")


def _page_pool(pool: str) -> str:
    """A web-UI location's body: its pool, and the gateway's own errors as pages."""
    errors = "".join(f"\n    error_page {c} @potr_page_{c};" for c in (502, 503, 504))
    return f"proxy_pass http://{pool};{errors}"


def _flat(block: str) -> str:
    return "\n".join("    " + line.strip() if i else line.strip()
                     for i, line in enumerate(block.strip().splitlines()))  # fmt: skip


def test_sign_in_and_static_files_go_to_the_first_regions_pool_by_default() -> None:
    text = _config().render()  # POOLS lists au first
    for path in PORTAL_EXACT:
        assert _flat(_block(text, f"location = {path}")) == _page_pool("potr_au")
    assert _flat(_block(text, "location ^~ /static/")) == _page_pool("potr_au")
    assert _block(text, "location = /static").strip() == "return 404;"
    es_first = parse_region_upstreams(";".join(reversed(POOLS.split(";"))))
    text = _config(regions=es_first).render()
    assert _flat(_block(text, "location = /login")) == _page_pool("potr_es")


def test_sign_in_and_static_files_go_to_the_portal_regions_pool_when_named() -> None:
    text = _config(portal_region=Region.US).render()
    for path in PORTAL_EXACT:
        assert _flat(_block(text, f"location = {path}")) == _page_pool("potr_us")
    assert _flat(_block(text, "location ^~ /static/")) == _page_pool("potr_us")


def test_the_host_reaches_the_process_as_sent_port_included() -> None:
    # The portal's CSRF check compares Origin's host:port with Host; nginx's $host
    # would drop the port.
    text = _config().render()
    assert re.findall(r"proxy_set_header Host (\S+);", text) == ["$http_host"]
    assert "proxy_set_header X-Forwarded-For $remote_addr;" in text
    assert "proxy_set_header X-Forwarded-Proto $scheme;" in text
    assert "proxy_cookie" not in text  # Set-Cookie passes unchanged
    assert "proxy_hide_header Set-Cookie" not in text


def test_every_server_has_passive_failure_detection() -> None:
    text = _config(max_fails=3, fail_timeout_s=7).render()
    lines = re.findall(r"^\s*server \d.*$", text, re.M)
    assert len(lines) == 8  # 3 regions x 2, identity x 2
    assert all(line.endswith("max_fails=3 fail_timeout=7s;") for line in lines)


def test_retries_are_on_connection_failures_only_and_never_for_a_sent_post() -> None:
    text = _config(next_upstream_tries=2).render()
    assert re.findall(r"proxy_next_upstream .*;", text) == ["proxy_next_upstream error timeout;"]
    assert "proxy_next_upstream_tries 2;" in text
    assert "non_idempotent" not in text
    assert "http_5" not in text  # a 5xx answer is the process's word, not a failure


def test_keepalive_to_the_pools_idles_out_before_uvicorn_does() -> None:
    text = _config().render()
    # uvicorn closes an idle connection after 5 s; the gateway must give it up first.
    assert "keepalive_timeout 4s;" in _block(text, "upstream potr_es")
    assert 'proxy_set_header Connection "";' in text
    assert "keepalive" not in _block(_config(upstream_keepalive=0).render(), "upstream potr_es")


def test_every_path_of_the_config_stays_in_the_prefix() -> None:
    text = _config().render()
    for directive in ("pid", "error_log", "access_log", "client_body_temp_path", "proxy_temp_path"):
        values = re.findall(rf"^\s*{directive} (\S+)", text, re.M)
        assert values
        for value in values:
            assert not value.startswith("/"), f"{directive} {value} is not under the prefix"


def test_tls_listens_with_the_given_files() -> None:
    tls = GatewayTls(certfile=Path("/etc/potr/gw.crt"), keyfile=Path("/etc/potr/gw.key"))
    text = _config(listen_port=443, tls=tls).render()
    assert "listen 0.0.0.0:443 ssl http2;" in text
    assert 'ssl_certificate "/etc/potr/gw.crt";' in text
    assert 'ssl_certificate_key "/etc/potr/gw.key";' in text
    assert "ssl_protocols TLSv1.2 TLSv1.3;" in text


@pytest.mark.parametrize(
    ("changes", "says"),
    [
        ({"regions": parse_region_upstreams(POOLS.split(";es=")[0])}, "region(s) es"),
        (
            {"regions": parse_region_upstreams(POOLS.replace(",10.0.3.2:8000", ""))},
            "region es: 1 API process(es); at least 2",
        ),
        ({"identity": ()}, "no identity processes"),
        ({"identity": parse_upstreams("10.0.3.2:8000")}, "10.0.3.2:8000 is listed twice"),
        ({"identity_paths": ("/api/v1/es/",)}, "overlaps a region's paths"),
        ({"identity_paths": ("/auth/",)}, "expected /api/v1/<name>/"),
        ({"identity_paths": ("/api/v1/auth",)}, "expected /api/v1/<name>/"),
        ({"api_prefix": "/ui"}, "overlaps the web UI's paths"),
        ({"api_prefix": "/static/v1"}, "overlaps the web UI's paths"),
        ({"listen_port": 0}, "listen port 0"),
        ({"max_fails": 0}, "max_fails must be at least 1"),
        ({"worker_processes": 0}, "worker_processes"),
        ({"tls": GatewayTls(Path("/x/a;b.crt"), Path("/x/k"))}, "TLS file name"),
    ],
)
def test_a_config_is_refused_naming_what_is_wrong(changes: dict[str, Any], says: str) -> None:
    with pytest.raises(GatewayConfigError, match=re.escape(says)):
        _config(**changes)


def test_fewer_processes_are_accepted_when_asked_for() -> None:
    one_each = "au=10.0.1.1:8000;us=10.0.2.1:8000;es=10.0.3.1:8000"
    conf = _config(regions=parse_region_upstreams(one_each), min_servers=1)
    assert "server 10.0.3.1:8000 " in _block(conf.render(), "upstream potr_es")


@pytest.mark.parametrize(
    ("text", "host", "port"),
    [("127.0.0.1:8001", "127.0.0.1", 8001), ("api-1.au.internal:80", "api-1.au.internal", 80)],
)
def test_an_upstream_is_host_and_port(text: str, host: str, port: int) -> None:
    assert Upstream.parse(text) == Upstream(host, port)


def test_an_ipv6_upstream_keeps_its_brackets() -> None:
    assert Upstream.parse("[::1]:8001").render() == "[::1]:8001"


@pytest.mark.parametrize(
    "text", ["127.0.0.1", "127.0.0.1:0", "127.0.0.1:70000", "evil;}:80", "a b:80", ":80"]
)
def test_a_malformed_upstream_is_refused(text: str) -> None:
    # Nothing of an address reaches the config unless it is an address: no ";" or "}"
    with pytest.raises(GatewayConfigError):
        Upstream.parse(text)


@pytest.mark.parametrize(
    ("text", "says"),
    [("eu=10.0.0.1:80", "expected <region>="), ("au=10.0.0.1:80;au=10.0.0.2:80", "once")],
)
def test_region_pools_name_known_regions_once(text: str, says: str) -> None:
    with pytest.raises(GatewayConfigError, match=says):
        parse_region_upstreams(text)


def test_settings_from_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("POTR_GATEWAY_DIR", str(tmp_path))
    monkeypatch.setenv("POTR_GATEWAY_LISTEN", "0.0.0.0:8443")
    monkeypatch.setenv("POTR_GATEWAY_UPSTREAMS", POOLS)
    monkeypatch.setenv("POTR_GATEWAY_IDENTITY_UPSTREAMS", "10.0.9.1:8000")
    monkeypatch.setenv("POTR_GATEWAY_MAX_FAILS", "3")
    monkeypatch.setenv("POTR_GATEWAY_PORTAL_REGION", "es")
    conf = GatewaySettings().config()
    assert (conf.listen_host, conf.listen_port, conf.max_fails) == ("0.0.0.0", 8443, 3)
    assert conf.portal == Region.ES
    assert conf.regions[Region.US] == (Upstream("10.0.2.1", 8000), Upstream("10.0.2.2", 8000))
    assert conf.identity == (Upstream("10.0.9.1", 8000),)


def test_settings_refuse_half_a_tls_pair(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="TLS needs both"):
        GatewaySettings(
            gateway_dir=tmp_path,
            gateway_upstreams=POOLS,
            gateway_identity_upstreams="10.0.9.1:8000",
            gateway_tls_cert_file=tmp_path / "gw.crt",
        )
