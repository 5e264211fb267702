"""A stand-in API process for the gateway tests: uvicorn serving a small ASGI app that
answers who it is and logs every request it receives (one JSON line, written before it
answers, so a process killed mid-request has still logged the request).

    python -m tests.integration.gateway_upstream --name es-1 --port 8001 --log FILE

Query options: ``delay_ms=N`` answers after N ms (so requests are in flight when a test
kills the process); ``crash=NAME`` makes process NAME SIGKILL itself after logging the
request, before answering it; ``crash_after_header=NAME`` once it has sent the status
line and headers, before the body.

A process killing itself from a handler dies between two steps of the event loop, so no
other request of it is half-answered at that moment (uvicorn writes a response's header
and body with no await between them); a SIGKILL from outside can land between the two
writes, and no proxy can retry a request whose answer has begun (docs/gateway.md).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from potr.servers.ports import free_ports, port_open
from tests.waiting import until_sync

ROOT = Path(__file__).resolve().parents[2]


def make_app(name: str, log: Any) -> Any:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        assert scope["type"] == "http"
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        query = {k: v[0] for k, v in parse_qs(scope["query_string"].decode()).items()}
        record = {
            "instance": name,
            "method": scope["method"],
            "path": scope["raw_path"].decode(),
            "request_id": headers.get("x-request-id"),
            "headers": headers,
            "body_bytes": len(body),
        }
        log.write(json.dumps(record) + "\n")  # line-buffered: in the file before we answer
        if query.get("crash") == name:
            os.kill(os.getpid(), signal.SIGKILL)
        if "delay_ms" in query:
            await asyncio.sleep(int(query["delay_ms"]) / 1000)  # the work a request takes
        answer = json.dumps({"instance": name, "path": record["path"]}).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(answer)).encode()),
                ],
            }
        )
        if query.get("crash_after_header") == name:
            os.kill(os.getpid(), signal.SIGKILL)
        await send({"type": "http.response.body", "body": answer})

    return app


class StandIn:
    """One stand-in process we own: start, SIGKILL, restart on the same port, read its log."""

    def __init__(self, name: str, log_dir: Path, port: int) -> None:
        self.name = name
        self.port = port
        self.log = log_dir / f"{name}.jsonl"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def spawn(self) -> StandIn:
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        args = ["--name", self.name, "--port", str(self.port), "--log", str(self.log)]
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tests.integration.gateway_upstream", *args],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        return self

    def wait_ready(self) -> None:
        until_sync(lambda: port_open("127.0.0.1", self.port), 15, f"{self.name} to listen")

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.kill()  # SIGKILL: no goodbye to nginx, connections reset
        self.proc.wait(timeout=5)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=10)

    def entries(self) -> list[dict[str, Any]]:
        if not self.log.exists():
            return []
        return [json.loads(line) for line in self.log.read_text().splitlines() if line]


def stand_ins(names: list[str], log_dir: Path) -> dict[str, StandIn]:
    """One stand-in per name, each on its own port (chosen together, so never twice)."""
    ports = free_ports(len(names))
    return {n: StandIn(n, log_dir, port) for n, port in zip(names, ports, strict=True)}


def start_all(stand_ins: list[StandIn]) -> list[StandIn]:
    """Spawn all, then wait for each: the processes start in parallel."""
    for s in stand_ins:
        s.spawn()
    for s in stand_ins:
        s.wait_ready()
    return stand_ins


def stop_all(stand_ins: list[StandIn]) -> None:
    """SIGTERM all, then wait for each: they stop in parallel."""
    for s in stand_ins:
        if s.proc is not None and s.proc.poll() is None:
            s.proc.terminate()
    for s in stand_ins:
        s.stop()


def main() -> None:
    import uvicorn

    parser = argparse.ArgumentParser()
    parser.add_argument("--name", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--log", type=Path, required=True)
    args = parser.parse_args()
    with args.log.open("a", buffering=1, encoding="utf-8") as log:
        uvicorn.run(
            make_app(args.name, log),
            host="127.0.0.1",
            port=args.port,
            log_level="warning",
            lifespan="off",
            access_log=False,
        )


if __name__ == "__main__":
    main()
