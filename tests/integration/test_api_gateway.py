"""The API gateway: a real nginx (Debian's nginx-light) from ``broker_config.nginx``'s
config, in front of real HTTP processes on loopback — two per region (au, us, es) and one
for identity. The processes are stand-ins that say who they are and log what reached them
(``gateway_upstream``); the regional API itself is tested elsewhere.

Issue 13's acceptance: an ES customer's requests reach only ES processes; killing one
API process of a region during 1,000 requests loses none.
"""

from __future__ import annotations

import http.client
import json
import re
import signal
import socket
import ssl
import threading
import uuid
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from broker_config import pki
from broker_config.nginx import GatewayConfig, GatewayTls, Upstream
from contracts.topics import Region
from potr.cli import app
from potr.servers.nginx import PrivateNginx
from potr.servers.ports import free_port
from tests.integration.gateway_upstream import StandIn, stand_ins, start_all, stop_all
from tests.waiting import until_sync

pytestmark = pytest.mark.integration

REGIONS = [r.value for r in Region]


@dataclass
class Gateway:
    nginx: PrivateNginx
    procs: dict[str, StandIn]

    def seen_by(self, request_ids: set[str]) -> dict[str, list[dict[str, Any]]]:
        """What each process logged of these requests."""
        return {
            name: [e for e in proc.entries() if e["request_id"] in request_ids]
            for name, proc in self.procs.items()
        }

    def access(self, request_ids: set[str]) -> list[dict[str, Any]]:
        """The gateway's log lines of these requests, once there is one for each: nginx
        writes a request's line after it has answered, so the line may follow the answer."""

        def logged() -> list[dict[str, Any]]:
            return [e for e in self.nginx.access_entries() if e["request_id"] in request_ids]

        until_sync(lambda: len(logged()) >= len(request_ids), 5, "the gateway's log lines")
        return logged()


def _config(procs: dict[str, StandIn], **options: Any) -> GatewayConfig:
    def pool(prefix: str) -> tuple[Upstream, ...]:
        return tuple(
            Upstream("127.0.0.1", p.port) for n, p in sorted(procs.items()) if n.startswith(prefix)
        )

    taken = {p.port for p in procs.values()}  # stand-ins not yet listening hold no port
    listen_port = next(port for port in iter(free_port, None) if port not in taken)
    return GatewayConfig(
        listen_host="127.0.0.1",
        listen_port=listen_port,
        regions={r: pool(f"{r.value}-") for r in Region},
        identity=pool("identity-"),
        worker_processes=1,  # one round-robin state: the split between two is exact
        **options,
    )


def _gateway(procs: dict[str, StandIn], running: list[str], **options: Any) -> Gateway:
    """nginx in front of ``procs``; only those named in ``running`` are started (the
    others are addresses where nothing listens)."""
    nginx = PrivateNginx(_config(procs, **options))
    try:
        start_all([procs[n] for n in running])
        nginx.start()
    except BaseException:
        _stop(Gateway(nginx, procs))
        raise
    return Gateway(nginx, procs)


def _stop(gateway: Gateway) -> None:
    gateway.nginx.cleanup()
    stop_all(list(gateway.procs.values()))


def _names() -> list[str]:
    return [f"{r}-{i}" for r in REGIONS for i in (1, 2)] + ["identity-1"]


@pytest.fixture(scope="module")
def regions(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    """Three regional pools of two processes each, and identity, behind one gateway."""
    logs = tmp_path_factory.mktemp("gateway-upstreams")
    procs = stand_ins(_names(), logs)
    gateway = _gateway(procs, list(procs))
    yield gateway
    _stop(gateway)


@pytest.fixture
def es_pair(tmp_path: Path) -> Iterator[Gateway]:
    """The same gateway, only ES's two processes running: for killing one of them."""
    procs = stand_ins(_names(), tmp_path)
    gateway = _gateway(procs, ["es-1", "es-2"])
    yield gateway
    _stop(gateway)


def _rid(tag: str) -> str:
    return f"test-{tag}-{uuid.uuid4().hex[:12]}"


def _raw_get(url: str, target: str, request_id: str) -> int:
    """The status of ``GET target`` sent byte for byte (httpx would normalise the path)."""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=5) as sock:
        sock.sendall(
            f"GET {target} HTTP/1.1\r\nHost: {host}\r\nX-Request-Id: {request_id}\r\n"
            "Connection: close\r\n\r\n".encode()
        )
        status_line = sock.makefile("rb").readline().decode()
    return int(status_line.split()[1])


# --- routing ------------------------------------------------------------------------


def test_an_es_customers_requests_reach_only_es_processes_shared_by_both(
    regions: Gateway,
) -> None:
    sent: dict[str, set[str]] = {r: set() for r in REGIONS}
    with httpx.Client(base_url=regions.nginx.url) as client:
        for region in REGIONS:
            for i in range(10):
                rid = _rid(region)
                sent[region].add(rid)
                answer = client.get(
                    f"/api/v1/{region}/sites/{i}",
                    headers={"X-Request-Id": rid, "Authorization": f"Bearer {region}-customer"},
                )
                assert answer.status_code == 200
                assert answer.json()["instance"] in (f"{region}-1", f"{region}-2")
    for region in REGIONS:
        seen = regions.seen_by(sent[region])
        served = Counter({name: len(got) for name, got in seen.items() if got})
        # Round robin over two equal processes: 10 requests, 5 each; nobody else.
        assert served == {f"{region}-1": 5, f"{region}-2": 5}
        for name in (f"{region}-1", f"{region}-2"):
            for entry in seen[name]:
                assert entry["path"].startswith(f"/api/v1/{region}/sites/")
                assert entry["headers"]["authorization"] == f"Bearer {region}-customer"


def test_identity_paths_reach_identity_only(regions: Gateway) -> None:
    ids = {_rid("auth") for _ in range(4)}
    with httpx.Client(base_url=regions.nginx.url) as client:
        for rid in ids:
            answer = client.post(
                "/api/v1/auth/token", json={"username": "u"}, headers={"X-Request-Id": rid}
            )
            assert answer.json()["instance"] == "identity-1"
    seen = regions.seen_by(ids)
    assert {n for n, got in seen.items() if got} == {"identity-1"}
    assert len(seen["identity-1"]) == 4


def test_web_pages_reach_their_regions_processes_and_sign_in_the_first_regions(
    regions: Gateway,
) -> None:
    # The web UI (cloud/portal/web): /ui/<region>/ like the API; the pages of no region
    # go to the portal region's pool, au here (the first region of the config).
    sent = {
        f"/ui/{region}/sites/{i}": {f"{region}-1", f"{region}-2"}
        for region in REGIONS
        for i in range(2)
    }
    for path in ("/", "/login", "/pin-login", "/logout", "/language", "/static/portal.css"):
        sent[path] = {"au-1", "au-2"}
    with httpx.Client(base_url=regions.nginx.url) as client:
        for path, allowed in sent.items():
            rid = _rid("ui")
            answer = client.get(path, headers={"X-Request-Id": rid})
            assert answer.status_code == 200, path
            assert answer.json()["instance"] in allowed, path
            (entry,) = [e for got in regions.seen_by({rid}).values() for e in got]
            assert entry["path"] == path  # passed on as sent
            # The Host as sent, port included: the portal's CSRF check compares it with
            # a form post's Origin.
            assert entry["headers"]["host"] == f"127.0.0.1:{regions.nginx.port}"


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/eu/sites",
        "/api/v2/es/sites",
        "/api/v1/es",
        "/api/v1/authx/token",
        "/ui/eu/",
        "/ui/es",
        "/login/x",
        "/static",
        "/docs",
    ],
)
def test_a_path_outside_the_routes_is_answered_404_by_the_gateway(
    regions: Gateway, path: str
) -> None:
    rid = _rid("404")
    answer = httpx.get(regions.nginx.url + path, headers={"X-Request-Id": rid})
    assert answer.status_code == 404
    assert answer.json() == {"detail": "no such route"}
    assert answer.headers["x-request-id"] == rid
    assert not any(regions.seen_by({rid}).values())


@pytest.mark.parametrize(
    "target",
    [
        "/api/v1/es/../au/sites",
        "/api/v1/es/%2e%2e/au/sites",
        "/api/v1/es%2F..%2Fau/sites",
        "//api/v1/es/sites",
        "/api/v1/es/./sites",
    ],
)
def test_a_path_that_normalises_elsewhere_is_refused(regions: Gateway, target: str) -> None:
    # nginx picks the location on the normalised path but forwards the path as sent: an
    # ES location would otherwise pass "/api/v1/es/../au/…" to an ES process, or the
    # other way round.
    rid = _rid("dots")
    assert _raw_get(regions.nginx.url, target, rid) == 400
    assert not any(regions.seen_by({rid}).values())


def test_a_query_string_may_hold_slashes_and_dots(regions: Gateway) -> None:
    rid = _rid("query")
    target = "/api/v1/es/sites?next=https://example.net/../x"
    assert _raw_get(regions.nginx.url, target, rid) == 200
    assert sum(len(v) for v in regions.seen_by({rid}).values()) == 1


def test_the_gateway_answers_its_own_health_check(regions: Gateway) -> None:
    answer = httpx.get(regions.nginx.url + "/healthz")
    assert answer.status_code == 200
    assert answer.json() == {"status": "ok"}


# --- what crosses the gateway -------------------------------------------------------


def test_a_request_id_is_kept_when_well_formed_and_made_otherwise(regions: Gateway) -> None:
    with httpx.Client(base_url=regions.nginx.url) as client:
        given = client.get("/api/v1/au/sites", headers={"X-Request-Id": "client-id-0001"})
        made = client.get("/api/v1/au/sites")
        bad = client.get("/api/v1/au/sites", headers={"X-Request-Id": "no"})
    assert given.headers["x-request-id"] == "client-id-0001"
    for answer in (made, bad):
        assert re.fullmatch(r"[0-9a-f]{32}", answer.headers["x-request-id"])
    ids = {a.headers["x-request-id"] for a in (given, made, bad)}
    assert len(ids) == 3
    seen = [e for got in regions.seen_by(ids).values() for e in got]
    assert {e["request_id"] for e in seen} == ids  # the process saw the same id


def test_hop_by_hop_and_forwarding_headers_from_the_client_do_not_pass(
    regions: Gateway,
) -> None:
    rid = _rid("hop")
    httpx.get(
        regions.nginx.url + "/api/v1/us/sites",
        headers={
            "X-Request-Id": rid,
            "Keep-Alive": "timeout=99",
            "TE": "trailers",
            "Proxy-Authorization": "Basic c2VjcmV0",
            "Upgrade": "websocket",
            "X-Forwarded-For": "203.0.113.9",
            "Authorization": "Bearer us-token",
        },
    )
    (entry,) = [e for got in regions.seen_by({rid}).values() for e in got]
    headers = entry["headers"]
    for name in ("keep-alive", "te", "proxy-authorization", "upgrade"):
        assert name not in headers
    assert headers["x-forwarded-for"] == "127.0.0.1"  # replaced, not extended
    assert headers["authorization"] == "Bearer us-token"


def test_a_body_over_the_limit_is_refused_by_the_gateway(regions: Gateway) -> None:
    limit = 1024 * 1024  # client_max_body_kib's default, 1024 KiB
    at, over = _rid("at-limit"), _rid("over-limit")
    with httpx.Client(base_url=regions.nginx.url) as client:
        ok = client.post("/api/v1/es/sites", content=b"x" * limit, headers={"X-Request-Id": at})
        refused = client.post(
            "/api/v1/es/sites", content=b"x" * (limit + 1), headers={"X-Request-Id": over}
        )
    assert ok.status_code == 200
    assert refused.status_code == 413
    seen = [e for got in regions.seen_by({at, over}).values() for e in got]
    assert [(e["request_id"], e["body_bytes"]) for e in seen] == [(at, limit)]


# --- failures -------------------------------------------------------------------------


@pytest.mark.chaos
def test_killing_one_api_process_of_a_region_during_1000_requests_loses_none(
    es_pair: Gateway,
) -> None:
    es1, es2 = es_pair.procs["es-1"], es_pair.procs["es-2"]
    victim = es1.proc
    assert victim is not None
    answers: list[tuple[int, str]] = []  # (status, the process that answered)
    lock = threading.Lock()  # list.append is atomic; the lock makes it plain

    def client(first: int) -> None:
        # http.client, one keep-alive connection per thread: a tenth of httpx's CPU per
        # request, so 1,000 requests take under a second.
        conn = http.client.HTTPConnection("127.0.0.1", es_pair.nginx.port, timeout=10)
        try:
            for i in range(first, first + 100):
                # 2 ms of work per request: some are in flight on es-1 when it dies. From
                # the 300th answer on, es-1 SIGKILLs itself on the first request it gets.
                crash = "&crash=es-1" if len(answers) >= 300 else ""
                conn.request("GET", f"/api/v1/es/sites/{i}?delay_ms=2{crash}")
                answer = conn.getresponse()
                body = json.loads(answer.read())
                with lock:
                    answers.append((answer.status, body.get("instance", "")))
        finally:
            conn.close()

    with ThreadPoolExecutor(10) as pool:
        list(pool.map(client, range(0, 1000, 100)))
    assert victim.wait(timeout=5) == -signal.SIGKILL

    assert Counter(status for status, _ in answers) == {200: 1000}
    by = Counter(instance for _, instance in answers)
    assert by["es-1"] >= 100  # round robin gave it about 150 of the first 300 ...
    assert by["es-1"] + by["es-2"] == 1000  # ... and es-2 the rest

    def log() -> list[dict[str, Any]]:
        return [e for e in es_pair.nginx.access_entries() if e["path"].startswith("/api/v1/es/")]

    # nginx logs a request once it has answered it: the last line may follow the answer.
    until_sync(lambda: len(log()) == 1000, 5, "nginx to log the 1,000 requests")
    tried = [e["upstream"].split(", ") for e in log()]
    assert all(set(t) <= {es1.address, es2.address} for t in tried)
    # Some requests did meet the dead process and were sent on to es-2.
    assert any(t == [es1.address, es2.address] for t in tried)


def _until_one(gateway: Gateway, method: str, path: str) -> tuple[list[httpx.Response], str]:
    """Send the request until es-1 gets it (round robin: within two); the answers and the
    request id es-1 logged."""
    answers: list[httpx.Response] = []
    with httpx.Client(base_url=gateway.nginx.url) as client:
        for _ in range(2):
            rid = _rid("crash")
            answers.append(client.request(method, path, headers={"X-Request-Id": rid}))
            if gateway.seen_by({rid})["es-1"]:
                return answers, rid
    pytest.fail("es-1 never got the request")


def test_a_page_whose_processes_are_down_is_a_page_and_the_api_keeps_json(
    es_pair: Gateway,
) -> None:
    # Only ES runs: AU's processes, and the portal's pages (AU is the portal region),
    # are addresses where nothing listens, so the gateway answers itself.
    with httpx.Client(base_url=es_pair.nginx.url) as client:
        for path in ("/ui/au/sites/1", "/login", "/static/portal.css"):
            page = client.get(path)
            assert page.status_code == 502, path
            assert page.headers["content-type"].startswith("text/html"), path
            assert "Please try again in a minute." in page.text, path
        api = client.get("/api/v1/au/sites/1")
        assert api.status_code == 502
        assert api.json() == {"detail": "no answer from the service behind the gateway"}
        assert client.get("/ui/es/sites/1").json()["instance"] in {"es-1", "es-2"}


@pytest.mark.chaos
def test_a_get_whose_process_dies_mid_request_is_answered_by_the_other(
    es_pair: Gateway,
) -> None:
    answers, rid = _until_one(es_pair, "GET", "/api/v1/es/sites/1?crash=es-1")
    assert answers[-1].status_code == 200
    assert answers[-1].json()["instance"] == "es-2"
    assert len(es_pair.seen_by({rid})["es-2"]) == 1  # sent again, to es-2
    (entry,) = es_pair.access({rid})
    assert entry["upstream"] == f"{es_pair.procs['es-1'].address}, {es_pair.procs['es-2'].address}"


@pytest.mark.chaos
def test_a_post_whose_process_dies_mid_request_is_not_sent_again(es_pair: Gateway) -> None:
    # The write may have happened: the client gets 502 and decides; es-2 never sees it.
    answers, rid = _until_one(es_pair, "POST", "/api/v1/es/sites?crash=es-1")
    assert answers[-1].status_code == 502
    assert answers[-1].json() == {"detail": "no answer from the service behind the gateway"}
    assert es_pair.seen_by({rid})["es-2"] == []
    (entry,) = es_pair.access({rid})
    assert entry["upstream"] == es_pair.procs["es-1"].address


@pytest.mark.chaos
def test_a_process_that_dies_after_it_began_to_answer_cannot_be_retried(
    es_pair: Gateway,
) -> None:
    # nginx has passed the status line on: it can only close the connection, and the
    # client sees a truncated answer (it may retry a GET; docs/gateway.md).
    with httpx.Client(base_url=es_pair.nginx.url) as client:
        for _ in range(2):
            rid = _rid("half")
            try:
                client.get(
                    "/api/v1/es/sites?crash_after_header=es-1", headers={"X-Request-Id": rid}
                )
            except httpx.RemoteProtocolError:
                break
        else:
            pytest.fail("es-1 never got the request")
    assert es_pair.seen_by({rid})["es-2"] == []
    (entry,) = es_pair.access({rid})
    assert (entry["status"], entry["upstream"]) == ("200", es_pair.procs["es-1"].address)


@pytest.mark.chaos
def test_a_post_to_a_process_that_is_down_goes_to_the_other(es_pair: Gateway) -> None:
    # Connection refused: nothing was sent, so even a POST is tried on the next process.
    es_pair.procs["es-1"].kill()
    ids = [_rid("refused") for _ in range(2)]
    with httpx.Client(base_url=es_pair.nginx.url) as client:
        answers = [
            client.post("/api/v1/es/sites", json={}, headers={"X-Request-Id": rid}) for rid in ids
        ]
    assert [a.json()["instance"] for a in answers] == ["es-2", "es-2"]
    tried = [e["upstream"] for e in es_pair.access(set(ids))]
    es1, es2 = es_pair.procs["es-1"].address, es_pair.procs["es-2"].address
    assert sorted(tried) == sorted([f"{es1}, {es2}", es2])  # round robin gave es-1 one


def _render(out: Path, port: int, upstreams: dict[str, list[StandIn]], *more: str) -> Any:
    pools = [
        f"--region-upstream={r}={','.join(p.address for p in ps)}" for r, ps in upstreams.items()
    ]
    command = ["gateway-config", "render", "--out", str(out), "--listen", f"127.0.0.1:{port}"]
    identity = ["--identity-upstream", f"127.0.0.1:{free_port()}"]
    return CliRunner().invoke(app, [*command, *pools, *identity, *more])


def test_render_into_a_running_gateways_directory_takes_a_process_out_without_a_failure(
    es_pair: Gateway,
) -> None:
    p = es_pair.procs
    pools = {"au": [p["au-1"], p["au-2"]], "us": [p["us-1"], p["us-2"]], "es": [p["es-2"]]}
    done = _render(es_pair.nginx.root, es_pair.nginx.port, pools, "--min-servers", "1")
    assert done.exit_code == 0, done.output
    assert "gateway reloaded" in done.output
    statuses: list[int] = []
    recent: list[str] = []

    def only_es2_lately() -> bool:
        answer = httpx.get(es_pair.nginx.url + "/api/v1/es/sites")
        statuses.append(answer.status_code)
        recent.append(answer.json()["instance"])
        return recent[-6:] == ["es-2"] * 6

    until_sync(only_es2_lately, 10, "the reloaded gateway to send ES requests to es-2 only")
    assert set(statuses) == {200}


def test_render_refuses_a_config_nginx_refuses_and_keeps_the_installed_one(
    tmp_path: Path,
) -> None:
    procs = stand_ins(_names(), tmp_path)  # addresses only: nothing runs
    pools = {r: [procs[f"{r}-1"], procs[f"{r}-2"]] for r in REGIONS}
    first = _render(tmp_path / "gw", free_port(), pools)
    assert first.exit_code == 0, first.output
    assert "no gateway running" in first.output
    installed = (tmp_path / "gw" / "nginx.conf").read_text()
    del pools["es"]
    unresolvable = "--region-upstream=es=127.0.0.1:9,no-such-host.invalid:80"
    refused = _render(tmp_path / "gw", free_port(), pools, unresolvable)
    assert refused.exit_code == 1
    assert "host not found" in refused.output
    assert (tmp_path / "gw" / "nginx.conf").read_text() == installed


def test_the_gateway_terminates_tls_with_the_configured_certificate(tmp_path: Path) -> None:
    ca_dir, certs = tmp_path / "ca", tmp_path / "certs"
    pki.init(ca_dir, name="PoTR gateway test CA")
    pki.issue_server(ca_dir, "gateway", ["127.0.0.1"], certs)
    procs = stand_ins(_names(), tmp_path)
    tls = GatewayTls(certfile=certs / "server.crt", keyfile=certs / "server.key")
    gateway = _gateway(procs, ["es-1", "es-2"], tls=tls)
    try:
        trust = ssl.create_default_context(cafile=certs / "ca.crt")
        answer = httpx.get(gateway.nginx.url + "/api/v1/es/sites", verify=trust)
        assert answer.status_code == 200
        assert answer.headers["strict-transport-security"] == "max-age=31536000"
        with pytest.raises(httpx.ConnectError):  # a client that does not trust the CA
            httpx.get(gateway.nginx.url + "/api/v1/es/sites")
    finally:
        _stop(gateway)
