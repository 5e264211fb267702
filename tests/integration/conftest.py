"""Fixtures of the integration tests that need no server of their own."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.waiting import until_sync


@pytest.fixture
def pty_pair(tmp_path: Path) -> Iterator[tuple[str, str]]:
    """Two linked pseudo-terminals from socat (the serial line of the RTU tests)."""
    socat = shutil.which("socat")
    assert socat is not None, "socat is required (scripts/bootstrap.sh installs it)"
    a, b = tmp_path / "ttyA", tmp_path / "ttyB"
    proc = subprocess.Popen(
        [socat, f"pty,raw,echo=0,link={a}", f"pty,raw,echo=0,link={b}"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        until_sync(
            lambda: (a.exists() and b.exists()) or proc.poll() is not None,
            5,
            "socat to create the pty pair",
        )
        assert proc.poll() is None, "socat exited"
        yield str(a), str(b)
    finally:
        proc.terminate()
        proc.wait(timeout=5)
