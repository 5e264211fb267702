"""Logins (issue 13): password and PIN logins per second at the chosen argon2id cost,
beside a bare argon2id verification of the same run (the floor every login pays).

    .venv/bin/python -m bench.auth [--logins 60] [--rounds 3] [--concurrency 4] [--json FILE]

One process, real PostgreSQL (``bench.common.bench_database``), the identity service as
``create_identity_service`` builds it (argon2id m=19 MiB, t=2, p=1; at most
``--concurrency`` hashes at once; a generated Ed25519 key). Every login succeeds, spread
over 16 users and (service figures) one client address per login, so no throttle row is
shared unless said. Each figure is measured ``--rounds`` times, the figures interleaved
within a round (drift in the machine's load hits them alike); the median is printed.

Figures (each at 1 and at ``--concurrency`` callers at once):
- baseline: ``argon2.PasswordHasher.verify`` of a stored hash, nothing else (PIN: the
  HMAC-SHA256 pepper step too);
- service: ``IdentityService.login`` / ``pin_login`` (throttle rows locked and stored,
  user lookup, verification, throttle settled, refresh token stored, audit row, EdDSA
  access token signed);
- HTTP: ``POST /api/v1/auth/login`` / ``pin-login`` through uvicorn on loopback (httpx in
  the same process: every request from 127.0.0.1, one throttle row);
- one address: the service's password logins all from one client address (an office
  behind one NAT), whose throttle row serialises them;
- tokens: ``verify_access_token`` per second beside a bare Ed25519 signature check — what
  every API request pays before any authorisation policy;
- authorisation: requests per second to ``GET /api/v1/au/sites`` carrying the portal's
  one authorisation dependency (token verified, role checked, scope computed) beside the
  same route with no dependency, both served in-process through httpx's ASGI transport
  (no network, no database: the dependency's own cost per request).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import hmac
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
from argon2 import PasswordHasher, Type
from fastapi import Depends, FastAPI

from bench.common import bench_database
from cloud.adapters.postgres import create_pool
from cloud.identity import (
    IdentityService,
    IdentitySettings,
    Role,
    SmtpMailer,
    UserCreated,
    UserIn,
    create_identity_service,
    create_router,
    issue_access_token,
    verify_access_token,
)
from cloud.identity.passwords import ARGON2_MEMORY_KIB, ARGON2_PARALLELISM, ARGON2_TIME_COST
from cloud.keyfiles import write_key_file
from cloud.migrate import migrate
from contracts.signing import SigningKey
from potr.runtime import serve_http
from potr.servers.ports import free_port

PASSWORD = "correct horse battery staple"
PIN_DIGEST_INPUT = b"483920"
USERS = 16
Figure = Callable[[], Awaitable[float]]


def _rate(calls: Sequence[Callable[[], object]], workers: int) -> float:
    """Calls per second running ``calls`` on ``workers`` threads."""
    started = time.perf_counter()
    if workers == 1:
        for call in calls:
            call()
    else:
        with ThreadPoolExecutor(workers) as pool:
            list(pool.map(lambda c: c(), calls))
    return len(calls) / (time.perf_counter() - started)


def _threaded(calls: Sequence[Callable[[], object]], workers: int) -> Figure:
    async def figure() -> float:
        return _rate(calls, workers)  # blocks the loop: nothing else runs meanwhile

    return figure


def _http(url: str, path: str, bodies: Sequence[dict[str, str]], workers: int) -> Figure:
    async def figure() -> float:
        gate = asyncio.Semaphore(workers)
        async with httpx.AsyncClient(base_url=url, timeout=60) as client:

            async def one(body: dict[str, str]) -> None:
                async with gate:
                    answer = await client.post(path, json=body)
                    assert answer.status_code == 200, answer.text

            started = time.perf_counter()
            await asyncio.gather(*(one(b) for b in bodies))
            return len(bodies) / (time.perf_counter() - started)

    return figure


def _baseline_calls(pepper: bytes) -> tuple[Callable[[], object], Callable[[], object]]:
    hasher = PasswordHasher(
        time_cost=ARGON2_TIME_COST,
        memory_cost=ARGON2_MEMORY_KIB,
        parallelism=ARGON2_PARALLELISM,
        hash_len=32,
        salt_len=16,
        type=Type.ID,
    )
    stored = hasher.hash(PASSWORD)
    pin_stored = hasher.hash(hmac.new(pepper, PIN_DIGEST_INPUT, hashlib.sha256).hexdigest())

    def verify() -> None:
        hasher.verify(stored, PASSWORD)

    def verify_pin() -> None:
        digest = hmac.new(pepper, PIN_DIGEST_INPUT, hashlib.sha256).hexdigest()
        hasher.verify(pin_stored, digest)

    return verify, verify_pin


def _token_rates(n: int) -> dict[str, float]:
    key = SigningKey.generate()
    token = issue_access_token(key, subject="usr_" + "a" * 32, role="operator", region="au")
    public = key.private_key.public_key()
    head, body, sig = token.split(".")
    raw_sig = base64.urlsafe_b64decode(sig + "=" * (-len(sig) % 4))
    signed = f"{head}.{body}".encode()
    keys = [public]
    return {
        "Ed25519 verify (bare)": _rate([lambda: public.verify(raw_sig, signed)] * n, 1),
        "verify_access_token": _rate([lambda: verify_access_token(token, keys)] * n, 1),
    }


def _users(service: IdentityService) -> list[UserCreated]:
    return [
        service.create_user(
            UserIn(
                email=f"bench{i}@potr.example",
                display_name=f"Bench {i}",
                role=Role.SUPPORT,
                home_region="au",
                employee_no=f"B-{i}",
                password=PASSWORD,
            )
        )
        for i in range(USERS)
    ]


def _figures(
    service: IdentityService, users: list[UserCreated], pepper: bytes, url: str, args: Any
) -> dict[str, Figure]:
    n, c = args.logins, args.concurrency
    cycle = list(enumerate((users * (n // USERS + 1))[:n]))
    verify, verify_pin = _baseline_calls(pepper)

    def address(i: int) -> str:
        return f"198.51.{i // 250}.{i % 250}"

    logins = [(lambda i=i, u=u: service.login(u.email, PASSWORD, address(i))) for i, u in cycle]
    pins = [
        (lambda i=i, u=u: service.pin_login(u.employee_no or "", u.pin or "", address(i)))
        for i, u in cycle
    ]
    crowd = [(lambda u=u: service.login(u.email, PASSWORD, "192.0.2.1")) for _, u in cycle]
    password_bodies = [{"email": u.email, "password": PASSWORD} for _, u in cycle]
    pin_bodies = [{"employee_no": u.employee_no or "", "pin": u.pin or ""} for _, u in cycle]
    figures: dict[str, Figure] = {}
    for w in sorted({1, c}):
        figures[f"baseline password x{w}"] = _threaded([verify] * n, w)
        figures[f"service password x{w}"] = _threaded(logins, w)
        figures[f"http password x{w}"] = _http(url, "/api/v1/auth/login", password_bodies, w)
        figures[f"baseline PIN x{w}"] = _threaded([verify_pin] * n, w)
        figures[f"service PIN x{w}"] = _threaded(pins, w)
        figures[f"http PIN x{w}"] = _http(url, "/api/v1/auth/pin-login", pin_bodies, w)
    figures[f"service one address x{c}"] = _threaded(crowd, c)
    return figures


async def _run(args: argparse.Namespace) -> dict[str, Any]:
    samples: dict[str, list[float]] = {}
    with bench_database() as db, tempfile.TemporaryDirectory() as tmp:
        migrate(db)
        key_file = Path(tmp) / "identity.pem"
        write_key_file(key_file)
        settings = IdentitySettings(
            database_url=db,
            identity_signing_key_file=key_file,
            identity_pin_pepper="bench-pepper-" + "x" * 32,
            identity_hash_concurrency=args.concurrency,
            identity_address_max_attempts=100_000,
        )
        pool = create_pool(db, max_size=args.concurrency + 4, name="bench-auth")
        port, stop = free_port(), asyncio.Event()
        try:
            service = create_identity_service(settings, pool)
            app = FastAPI()
            app.include_router(
                create_router(
                    service, mailer=SmtpMailer(settings), mail_from="b@x.example", reset_url=""
                )
            )
            server = asyncio.create_task(
                serve_http(app, "127.0.0.1", port, stop, log_level="warning", lifespan="off")
            )
            url = f"http://127.0.0.1:{port}"
            await _wait_listening(url)
            figures = _figures(service, _users(service), settings.pin_pepper(), url, args)
            for _ in range(args.rounds):
                for name, figure in figures.items():
                    samples.setdefault(name, []).append(await figure())
            stop.set()
            await server
        finally:
            pool.close()
    medians = {name: statistics.median(values) for name, values in samples.items()}
    return {
        "logins": args.logins,
        "rounds": args.rounds,
        "concurrency": args.concurrency,
        "argon2id": {"m_kib": ARGON2_MEMORY_KIB, "t": ARGON2_TIME_COST, "p": ARGON2_PARALLELISM},
        "per_s": medians,
        "samples": samples,
        "tokens": _token_rates(args.logins * 50),
        "authorisation": await _authz_rates(args.logins * 20),
    }


async def _authz_rates(n: int) -> dict[str, float]:
    """Requests/s to a bare route and to the same route behind the authorisation
    dependency (an operator's token for its own region), interleaved in one run."""
    from cloud.identity import Principal
    from cloud.portal import access_dependencies

    key = SigningKey.generate()
    token = issue_access_token(key, subject="usr_" + "b" * 32, role="operator", region="au")
    keys = [key.private_key.public_key()]

    def verify(raw: str) -> Principal:
        return verify_access_token(raw, keys)

    access = access_dependencies(verify)("sites.list")
    app = FastAPI()

    @app.get("/bare/{region}/sites")
    async def bare(region: str) -> dict[str, int]:
        return {"ok": 1}

    @app.get("/api/v1/{region}/sites", dependencies=[Depends(access)])
    async def guarded(region: str) -> dict[str, int]:
        return {"ok": 1}

    headers = {"Authorization": f"Bearer {token}"}
    transport = httpx.ASGITransport(app=app)
    rates: dict[str, list[float]] = {}
    async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
        for _ in range(3):
            for name, path in (
                ("bare route", "/bare/au/sites"),
                ("authorised route", "/api/v1/au/sites"),
            ):
                started = time.perf_counter()
                for _ in range(n):
                    answer = await client.get(path, headers=headers)
                    assert answer.status_code == 200, answer.text
                rates.setdefault(name, []).append(n / (time.perf_counter() - started))
    return {name: statistics.median(values) for name, values in rates.items()}


async def _wait_listening(base: str) -> None:
    async with httpx.AsyncClient(base_url=base) as client:
        for _ in range(200):
            try:
                await client.get("/openapi.json")
                return
            except httpx.TransportError:
                await asyncio.sleep(0.05)
    raise RuntimeError("uvicorn did not start")


def _print(results: dict[str, Any]) -> None:
    rates, c = results["per_s"], results["concurrency"]
    best = {name: max(values) for name, values in results["samples"].items()}
    print(
        f"argon2id m={ARGON2_MEMORY_KIB} KiB t={ARGON2_TIME_COST} p={ARGON2_PARALLELISM};"
        f" {results['logins']} logins per figure, {results['rounds']} rounds;"
        " per second: median (best), and x of the baseline's"
    )
    for kind in ("password", "PIN"):
        for w in sorted({1, c}):
            floor, top = rates[f"baseline {kind} x{w}"], best[f"baseline {kind} x{w}"]
            print(f"  x{w} {'baseline ' + kind:<28} {floor:6.1f} ({top:5.1f})")
            for layer in ("service", "http"):
                name = f"{layer} {kind} x{w}"
                rate, peak = rates[name], best[name]
                print(
                    f"  x{w} {layer + ' ' + kind + ' login':<28} {rate:6.1f} ({peak:5.1f})"
                    f"   {rate / floor:4.2f}x ({peak / top:4.2f}x)"
                )
    crowd = f"service one address x{c}"
    print(f"  x{c} {'service, one address':<28} {rates[crowd]:6.1f} ({best[crowd]:5.1f})")
    tokens = results["tokens"]
    raw, full = tokens["Ed25519 verify (bare)"], tokens["verify_access_token"]
    print(f"  {'Ed25519 verify (bare)':<31} {raw:8,.0f}")
    print(
        f"  {'verify_access_token':<31} {full:8,.0f}   {full / raw:4.2f}x"
        f" ({1e6 / full:.0f} µs each)"
    )
    authz = results["authorisation"]
    plain, guarded = authz["bare route"], authz["authorised route"]
    print(f"  {'requests/s, bare route':<31} {plain:8,.0f}")
    print(
        f"  {'requests/s, authorised route':<31} {guarded:8,.0f}   {guarded / plain:4.2f}x"
        f" (+{1e6 / guarded - 1e6 / plain:.0f} µs per request)"
    )


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--logins", type=int, default=60)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    results = asyncio.run(_run(args))
    _print(results)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main(sys.argv[1:])
