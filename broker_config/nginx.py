"""Render the API gateway's ``nginx.conf`` (nginx 1.22, Debian's ``nginx-light``; pure
text, no processes here).

The gateway routes by the path alone: ``/api/v1/<region>/…`` and the web UI's
``/ui/<region>/…`` to that region's pool of API processes, identity's paths
(``/api/v1/auth/…``) to identity's pool, the web UI's paths that belong to no region
(``/``, ``/login``, ``/pin-login``, ``/logout``, ``/language`` and the static files under
``/static/``) to the pool of one region, ``portal_region`` (any regional process can sign
a person in: it asks identity), and anything else is answered 404 by the gateway itself
and reaches nobody. It never reads the token or a cookie: the API process verifies them
and scopes every query (ARCHITECTURE decision 44).

The browser's ``Host`` reaches the process as it was sent, port included
(``$http_host``, not nginx's ``$host``, which drops the port): the portal's CSRF check
compares it with the ``Origin`` of every form post. ``Set-Cookie`` from a process passes
to the browser unchanged (no ``proxy_cookie_*``): the portal sets its cookies on ``/``,
so a session begun on the portal region's pool is sent to every region's pages.

Retries happen on connection failures only (``proxy_next_upstream error timeout``), and
nginx never retries a POST, PATCH or LOCK once it has been sent (``non_idempotent`` is left
off): a process that dies while it handles a GET costs the client nothing, one that dies
while it handles a POST answers 502, because the write may have happened. A request nginx
could not send at all (connection refused) is retried whatever its method.

Every relative path (pid, logs, temporary files) is relative to the prefix nginx runs
with (``nginx -p DIR -c nginx.conf``), so a candidate is checked in a scratch prefix
without touching the live one, and private instances never meet the system's nginx.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from contracts.topics import Region

__all__ = [
    "ACCESS_LOG",
    "CONF_FILE",
    "ERROR_LOG",
    "PID_FILE",
    "PORTAL_PATHS",
    "PORTAL_PREFIXES",
    "UI_PREFIX",
    "GatewayConfig",
    "GatewayConfigError",
    "GatewayTls",
    "Upstream",
    "parse_region_upstreams",
    "parse_upstreams",
]

CONF_FILE = "nginx.conf"
PID_FILE = "run/nginx.pid"
ERROR_LOG = "logs/error.log"
#: One JSON object per line: request id, method, path, status, the upstream addresses
#: tried in order ("a, b" when the first failed) and their statuses.
ACCESS_LOG = "logs/access.log"
#: Directories under the prefix nginx needs; ``tmp/*`` are created by nginx itself (as
#: root it gives them to its workers' user).
PREFIX_DIRS = ("logs", "run", "tmp")

_HOST_NAME = re.compile(
    r"^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$"
)
_PATH_PREFIX = re.compile(r"^/[a-z0-9/_-]*/$")
_UNSAFE_IN_FILE_NAME = re.compile(r'["\\$;{}\s]')

#: A well-formed request id from the client (or a load balancer in front) is kept, so one
#: id follows a request end to end; anything else is replaced by nginx's own.
_REQUEST_ID = r"^[A-Za-z0-9._:-]{8,128}$"
#: The web UI's paths of no region (``cloud.portal.web``): exact paths, and path prefixes.
PORTAL_PATHS = ("/", "/login", "/pin-login", "/logout", "/language")
PORTAL_PREFIXES = ("/static/",)
#: The web UI's pages of a region are ``/ui/<region>/…``.
UI_PREFIX = "/ui"
#: Refused before any routing (400): dot segments, double slashes and encoded slashes or
#: dots in the path. nginx picks the location on the *normalised* path but passes the path
#: as sent, so ``/api/v1/es/../au/x`` would reach an AU process carrying "es" in its path.
_AMBIGUOUS_PATH = r"^[^?]*(/\.\.?(/|\?|$)|//|%2[eEfF]|%5[cC])"

#: The gateway's own error answers, in the API's error shape.
_ERRORS: dict[int, str] = {
    400: "ambiguous or malformed request path",
    404: "no such route",
    413: "request body too large",
    502: "no answer from the service behind the gateway",
    503: "the service behind the gateway is unavailable",
    504: "the service behind the gateway did not answer in time",
}
#: What a person's browser gets instead on the web UI's paths when the gateway cannot
#: reach a page's processes: a page, not the API's JSON.
_PAGE_ERRORS: dict[int, str] = {
    502: "The service did not answer. Please try again in a minute.",
    503: "The service is unavailable just now. Please try again in a few minutes.",
    504: "The service did not answer in time. Please try again in a minute.",
}


class GatewayConfigError(ValueError):
    """A gateway configuration refused before it is written; the message names the setting."""


@dataclass(frozen=True)
class Upstream:
    """One API process: ``host:port`` (IPv4, ``[IPv6]`` or a name resolved once, when
    nginx loads the config)."""

    host: str
    port: int

    def __post_init__(self) -> None:
        if not 1 <= self.port <= 65_535:
            raise GatewayConfigError(f"upstream {self.host}:{self.port}: port out of range")
        if not _valid_host(self.host):
            raise GatewayConfigError(f"upstream host {self.host!r} is not an address or name")

    @classmethod
    def parse(cls, text: str) -> Upstream:
        """``127.0.0.1:8001``, ``api-1.au.internal:8000`` or ``[::1]:8001``."""
        host, sep, port = text.strip().rpartition(":")
        if not sep or not port.isdigit():
            raise GatewayConfigError(f"upstream {text!r}: expected host:port")
        if host.startswith("[") and host.endswith("]"):
            host = host[1:-1]
        return cls(host, int(port))

    def render(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


def parse_upstreams(text: str) -> tuple[Upstream, ...]:
    """A comma-separated list of ``host:port``."""
    return tuple(Upstream.parse(part) for part in text.split(",") if part.strip())


def parse_region_upstreams(text: str) -> dict[Region, tuple[Upstream, ...]]:
    """``au=h:p,h:p;us=h:p,h:p;es=h:p,h:p`` (``;`` or newlines between regions)."""
    pools: dict[Region, tuple[Upstream, ...]] = {}
    for part in re.split(r"[;\n]", text):
        if not part.strip():
            continue
        name, sep, servers = part.partition("=")
        try:
            region = Region(name.strip())
        except ValueError:
            raise GatewayConfigError(f"{part.strip()!r}: expected <region>=host:port,...") from None
        if not sep or region in pools:
            raise GatewayConfigError(
                f"region {region.value}: give its pool once, as {region.value}=host:port,..."
            )
        pools[region] = parse_upstreams(servers)
    return pools


@dataclass(frozen=True)
class GatewayTls:
    """TLS on the gateway's listener: the certificate chain and its key (PEM files)."""

    certfile: Path
    keyfile: Path


@dataclass(frozen=True)
class GatewayConfig:
    """One gateway: where it listens, each region's pool of API processes, identity's
    pool, and the region whose pool serves the web UI's sign-in pages and static files."""

    listen_host: str
    listen_port: int
    regions: Mapping[Region, tuple[Upstream, ...]]
    identity: tuple[Upstream, ...]
    #: Path prefixes identity serves (login, refresh, keys); each ends with ``/``.
    identity_paths: tuple[str, ...] = ("/api/v1/auth/",)
    api_prefix: str = "/api/v1"
    #: The pool that serves the web UI's paths of no region (sign-in, static files);
    #: None: the first region of ``regions``.
    portal_region: Region | None = None
    #: API processes each region must have (the issue: at least two, load-balanced).
    min_servers: int = 2
    #: Passive failure detection: a process that fails ``max_fails`` times within
    #: ``fail_timeout_s`` gets no requests for ``fail_timeout_s``, then one to try it.
    max_fails: int = 2
    fail_timeout_s: int = 10
    #: Attempts per request (first try included) when a connection fails.
    next_upstream_tries: int = 2
    connect_timeout_s: int = 2
    read_timeout_s: int = 30
    client_max_body_kib: int = 1024
    #: Idle connections kept per worker to each pool (0: a new connection per request).
    upstream_keepalive: int = 16
    #: Must stay below the API processes' own idle timeout (uvicorn: 5 s): a POST sent
    #: on a connection the process has just closed is not retried (502).
    upstream_keepalive_timeout_s: int = 4
    worker_processes: int | Literal["auto"] = "auto"
    worker_connections: int = 1024
    tls: GatewayTls | None = None
    _pools: dict[str, tuple[Upstream, ...]] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        _check(self)
        pools = {f"potr_{r.value}": self.regions[r] for r in Region}
        pools["potr_identity"] = self.identity
        object.__setattr__(self, "_pools", pools)

    def region_path(self, region: Region) -> str:
        return f"{self.api_prefix}/{region.value}/"

    def ui_path(self, region: Region) -> str:
        return f"{UI_PREFIX}/{region.value}/"

    @property
    def portal(self) -> Region:
        """The region whose pool serves the web UI's paths of no region."""
        return self.portal_region or next(iter(self.regions))

    def render(self) -> str:
        return "\n".join(
            [
                "# Rendered by `potr gateway-config render`; edits are overwritten.",
                "# Relative paths are relative to the prefix: nginx -p DIR -c nginx.conf",
                f"worker_processes {self.worker_processes};",
                f"pid {PID_FILE};",
                f"error_log {ERROR_LOG} warn;",
                "",
                f"events {{\n    worker_connections {self.worker_connections};\n}}",
                "",
                "http {",
                *_indent(self._http_lines()),
                *_indent(self._upstream_lines()),
                *_indent(self._server_lines()),
                "}",
                "",
            ]
        )

    def _http_lines(self) -> list[str]:
        return [
            "server_tokens off;",
            "default_type application/json;",
            *(f"{kind}_temp_path tmp/{kind};" for kind in _TEMP_PATHS),
            "client_body_temp_path tmp/client_body;",
            f"client_max_body_size {self.client_max_body_kib}k;",
            "client_header_timeout 10s;",
            "client_body_timeout 10s;",
            "send_timeout 30s;",
            "keepalive_timeout 60s;",
            "reset_timedout_connection on;",
            "",
            "map $http_x_request_id $potr_request_id {",
            f'    "~{_REQUEST_ID}" $http_x_request_id;',
            "    default $request_id;",
            "}",
            "log_format potr_gateway escape=json",
            '    \'{"time":"$time_iso8601","request_id":"$potr_request_id",'
            '"remote":"$remote_addr","method":"$request_method","path":"$uri",'
            '"status":"$status","bytes":"$body_bytes_sent","upstream":"$upstream_addr",'
            '"upstream_status":"$upstream_status","request_s":"$request_time",'
            '"upstream_s":"$upstream_response_time"}\';',
            f"access_log {ACCESS_LOG} potr_gateway;",
            "",
            # Keep-alive to the pools needs HTTP/1.1 and no "Connection: close".
            "proxy_http_version 1.1;",
            'proxy_set_header Connection "";',
            # The Host as sent, port included ($host drops it): the portal's CSRF check
            # compares it with the Origin of a form post.
            "proxy_set_header Host $http_host;",
            "proxy_set_header X-Request-Id $potr_request_id;",
            # The gateway is the first hop we trust: a client's own X-Forwarded-For is
            # replaced, not extended.
            "proxy_set_header X-Forwarded-For $remote_addr;",
            "proxy_set_header X-Forwarded-Proto $scheme;",
            # Hop-by-hop headers belong to the client's connection, not to the next one.
            *(f'proxy_set_header {name} "";' for name in _HOP_BY_HOP),
            "proxy_hide_header X-Request-Id;",
            f"proxy_connect_timeout {self.connect_timeout_s}s;",
            f"proxy_send_timeout {self.read_timeout_s}s;",
            f"proxy_read_timeout {self.read_timeout_s}s;",
            # Connection failures only; never an answer (a 5xx is the process's word),
            # and never a POST/PATCH once sent (no `non_idempotent`).
            "proxy_next_upstream error timeout;",
            f"proxy_next_upstream_tries {self.next_upstream_tries};",
            "",
        ]

    def _upstream_lines(self) -> list[str]:
        lines: list[str] = []
        for name, servers in self._pools.items():
            lines += [
                f"upstream {name} {{",
                # Shared by the workers: one worker's failures count for all.
                f"    zone {name} 64k;",
                *(
                    f"    server {s.render()} max_fails={self.max_fails}"
                    f" fail_timeout={self.fail_timeout_s}s;"
                    for s in servers
                ),
            ]
            if self.upstream_keepalive:
                lines += [
                    f"    keepalive {self.upstream_keepalive};",
                    f"    keepalive_timeout {self.upstream_keepalive_timeout_s}s;",
                ]
            lines += ["}", ""]
        return lines

    def _server_lines(self) -> list[str]:
        listen = f"{_listen_host(self.listen_host)}:{self.listen_port}"
        lines = ["server {"]
        if self.tls is None:
            lines.append(f"    listen {listen};")
        else:
            lines += [
                f"    listen {listen} ssl http2;",
                f'    ssl_certificate "{self.tls.certfile}";',
                f'    ssl_certificate_key "{self.tls.keyfile}";',
                "    ssl_protocols TLSv1.2 TLSv1.3;",
                "    ssl_session_cache shared:potr_tls:10m;",
                "    ssl_session_tickets off;",
                '    add_header Strict-Transport-Security "max-age=31536000" always;',
            ]
        lines += [
            "    add_header X-Request-Id $potr_request_id always;",
            f'    if ($request_uri ~ "{_AMBIGUOUS_PATH}") {{',
            "        return 400;",
            "    }",
            *(f"    error_page {code} @potr_{code};" for code in _ERRORS),
            "",
            "    location = /healthz {",
            "        access_log off;",
            '        return 200 "{\\"status\\":\\"ok\\"}";',
            "    }",
        ]
        for region in Region:
            lines += _proxy_location(self.region_path(region), f"potr_{region.value}")
            lines += _proxy_location(self.ui_path(region), f"potr_{region.value}", pages=True)
        for path in self.identity_paths:
            lines += _proxy_location(path, "potr_identity")
        portal = f"potr_{self.portal.value}"
        for path in PORTAL_PATHS:
            lines += [
                f"    location = {path} {{",
                f"        proxy_pass http://{portal};",
                *_page_errors(),
                "    }",
            ]
        for path in PORTAL_PREFIXES:
            lines += _proxy_location(path, portal, pages=True)
        lines += ["    location / {", "        return 404;", "    }"]
        for code, detail in _ERRORS.items():
            body = '{\\"detail\\":\\"' + detail + '\\"}'
            lines += [f"    location @potr_{code} {{", f'        return {code} "{body}";', "    }"]
        for code, text in _PAGE_ERRORS.items():
            page = (
                "<!doctype html><html lang=en><meta charset=utf-8>"
                f"<title>Power on the Roof</title><h1>Power on the Roof</h1><p>{text}</p></html>"
            )
            lines += [
                f"    location @potr_page_{code} {{",
                "        default_type text/html;",
                f'        return {code} "{page}";',
                "    }",
            ]
        return [*lines, "}"]


_TEMP_PATHS = ("proxy", "fastcgi", "uwsgi", "scgi")
_HOP_BY_HOP = ("Keep-Alive", "Proxy-Connection", "Proxy-Authorization", "TE", "Trailer", "Upgrade")


def _page_errors() -> list[str]:
    # In a location, these replace the server's JSON answers for what the gateway itself
    # answers (the processes' own error pages pass through: no proxy_intercept_errors).
    return [f"        error_page {code} @potr_page_{code};" for code in _PAGE_ERRORS]


def _proxy_location(path: str, pool: str, *, pages: bool = False) -> list[str]:
    # ``^~``: a prefix match that no regex location can override. The path without its
    # slash would otherwise get nginx's 301 to the path with it: nothing is there.
    # ``pages``: the web UI's, whose gateway errors are pages (:data:`_PAGE_ERRORS`).
    return [
        f"    location ^~ {path} {{",
        f"        proxy_pass http://{pool};",
        *(_page_errors() if pages else []),
        "    }",
        f"    location = {path.rstrip('/')} {{",
        "        return 404;",
        "    }",
    ]


def _indent(lines: list[str]) -> list[str]:
    return [f"    {line}" if line else "" for line in lines]


def _listen_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def _valid_host(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
        return True
    except ValueError:
        return bool(_HOST_NAME.match(host))


def _check(conf: GatewayConfig) -> None:
    _check_numbers(conf)
    if not 1 <= conf.listen_port <= 65_535:
        raise GatewayConfigError(f"listen port {conf.listen_port} out of range")
    if not _valid_host(conf.listen_host):
        raise GatewayConfigError(f"listen host {conf.listen_host!r} is not an address or name")
    missing = [r.value for r in Region if r not in conf.regions]
    if missing:
        raise GatewayConfigError(f"no API processes for region(s) {', '.join(missing)}")
    for region in Region:
        if len(conf.regions[region]) < conf.min_servers:
            raise GatewayConfigError(
                f"region {region.value}: {len(conf.regions[region])} API process(es);"
                f" at least {conf.min_servers} are required"
            )
    if not conf.identity:
        raise GatewayConfigError("no identity processes")
    _check_distinct([*(s for r in Region for s in conf.regions[r]), *conf.identity])
    _check_paths(conf)
    if conf.tls is not None:
        for path in (conf.tls.certfile, conf.tls.keyfile):
            if _UNSAFE_IN_FILE_NAME.search(str(path)):
                raise GatewayConfigError(f"TLS file name {str(path)!r}: no quotes, $, ; or spaces")


def _check_numbers(conf: GatewayConfig) -> None:
    positive = {
        "min_servers": conf.min_servers,
        "max_fails": conf.max_fails,
        "fail_timeout_s": conf.fail_timeout_s,
        "next_upstream_tries": conf.next_upstream_tries,
        "connect_timeout_s": conf.connect_timeout_s,
        "read_timeout_s": conf.read_timeout_s,
        "client_max_body_kib": conf.client_max_body_kib,
        "upstream_keepalive_timeout_s": conf.upstream_keepalive_timeout_s,
        "worker_connections": conf.worker_connections,
    }
    for name, value in positive.items():
        if value < 1:
            raise GatewayConfigError(f"{name} must be at least 1, not {value}")
    if conf.upstream_keepalive < 0:
        raise GatewayConfigError("upstream_keepalive must be 0 (off) or more")
    if conf.worker_processes != "auto" and conf.worker_processes < 1:
        raise GatewayConfigError("worker_processes must be 'auto' or at least 1")


def _check_distinct(servers: list[Upstream]) -> None:
    """One process serves one pool, once: the same address twice would double its share
    and, across pools, send one region's requests to another's process."""
    seen: set[tuple[str, int]] = set()
    for server in servers:
        key = (server.host, server.port)
        if key in seen:
            raise GatewayConfigError(f"upstream {server.render()} is listed twice")
        seen.add(key)


def _check_paths(conf: GatewayConfig) -> None:
    if not _PATH_PREFIX.match(conf.api_prefix + "/"):
        raise GatewayConfigError(f"api_prefix {conf.api_prefix!r}: expected like /api/v1")
    portal = [f"{UI_PREFIX}/", *PORTAL_PREFIXES]
    if any(
        (conf.api_prefix + "/").startswith(p) or p.startswith(conf.api_prefix + "/") for p in portal
    ):
        raise GatewayConfigError(f"api_prefix {conf.api_prefix!r} overlaps the web UI's paths")
    regional = [conf.region_path(r) for r in Region]
    if len(set(conf.identity_paths)) != len(conf.identity_paths):
        raise GatewayConfigError("identity_paths lists a path twice")
    for path in conf.identity_paths:
        if not _PATH_PREFIX.match(path) or not path.startswith(conf.api_prefix + "/"):
            raise GatewayConfigError(
                f"identity path {path!r}: expected {conf.api_prefix}/<name>/ (a-z, 0-9, _ -)"
            )
        if any(path.startswith(r) or r.startswith(path) for r in regional):
            raise GatewayConfigError(f"identity path {path!r} overlaps a region's paths")
