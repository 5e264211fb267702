"""A local fake SAP S/4HANA for tests: mock-sap (OData V2 shapes, CSRF, ``$batch``
change sets, SAP-shaped errors) with its schema corrected and faults injected
(:mod:`tests.fakes.fake_sap.schema`, :mod:`tests.fakes.fake_sap.server`).

:func:`running_fake_sap` starts one in its own process on a free loopback port and
stops it afterwards; :class:`FakeSap` drives its control plane and reads it directly
(plain ``urllib``: independent of the adapter under test).
"""

from __future__ import annotations

import json
import os
import select
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["FakeSap", "running_fake_sap"]

_ROOT = Path(__file__).resolve().parents[3]
_START_TIMEOUT_S = 20.0
_ODATA = "/sap/opu/odata/sap/"


@dataclass
class FakeSap:
    process: subprocess.Popen[bytes]
    port: int

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _call(self, method: str, path: str, payload: Any = None, timeout_s: float = 10.0) -> Any:
        data = None if payload is None else json.dumps(payload).encode()
        request = urllib.request.Request(
            self.base_url + path,
            data=data,
            method=method,
            headers={"Content-Type": "application/json", "Accept": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=timeout_s) as response:
            return json.loads(response.read() or b"null")

    def chaos(
        self,
        *,
        error_rate: float = 0.0,
        csrf_expiry_rate: float = 0.0,
        stall_rate: float = 0.0,
        stall_s: float = 2.0,
    ) -> None:
        """Set the fault rates (all zero: a well-behaved SAP)."""
        self._call(
            "POST",
            "/_fake/chaos",
            {
                "error_rate": error_rate,
                "csrf_expiry_rate": csrf_expiry_rate,
                "stall_rate": stall_rate,
                "stall_s": stall_s,
            },
        )

    def stats(self) -> dict[str, int]:
        """How many faults were injected so far, by kind."""
        result: dict[str, int] = self._call("GET", "/_fake/stats")
        return result

    def close_periods(self, *periods: str) -> None:
        """Refuse postings into these ``YYYY-MM`` periods (FI's closed periods)."""
        self._call("POST", "/_fake/closed-periods", {"periods": list(periods)})

    def set_service_order_status(
        self,
        service_order: str,
        *,
        rejected: bool | None = None,
        completed: bool | None = None,
        reason: str = "",
    ) -> None:
        """Act as an SAP user: reject or complete ``service_order`` in SAP."""
        payload: dict[str, Any] = {"reason": reason}
        if rejected is not None:
            payload["rejected"] = rejected
        if completed is not None:
            payload["completed"] = completed
        self._call("POST", f"/_fake/service-orders/{service_order}", payload)

    def requests_log(self, limit: int = 500) -> list[dict[str, Any]]:
        """What clients sent (newest first), mock-sap's request log."""
        rows: list[dict[str, Any]] = self._call("GET", f"/_mock/requests?limit={limit}")["results"]
        return rows

    def odata(self, service: str, path: str, **query: str) -> list[dict[str, Any]]:
        """GET ``service``/``path`` with ``$filter`` etc.; the ``results``."""
        params = urllib.parse.urlencode({**query, "$format": "json"})
        body = self._call("GET", f"{_ODATA}{service}/{path}?{params}")
        results: list[dict[str, Any]] = body["d"]["results"]
        return results


def _read_port(process: subprocess.Popen[bytes]) -> int:
    assert process.stdout is not None
    deadline = time.monotonic() + _START_TIMEOUT_S
    buffer = b""
    while time.monotonic() < deadline:
        ready, _, _ = select.select([process.stdout], [], [], deadline - time.monotonic())
        if not ready:
            break
        chunk = os.read(process.stdout.fileno(), 4096)
        if not chunk:
            break
        buffer += chunk
        for line in buffer.decode(errors="replace").splitlines():
            if line.startswith("FAKE_SAP_PORT "):
                return int(line.split()[1])
    raise RuntimeError(f"fake SAP did not start within {_START_TIMEOUT_S:g}s: {buffer!r}")


@contextmanager
def running_fake_sap(*args: str) -> Iterator[FakeSap]:
    """A fake SAP in its own process (``args``: its command-line options)."""
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.fakes.fake_sap", "--port", "0", *args],
        cwd=_ROOT,
        stdout=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(_ROOT)},
    )
    try:
        yield FakeSap(process, _read_port(process))
    finally:
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)
