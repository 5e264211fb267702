"""The agent's only pymodbus module: one Modbus TCP connection per endpoint.

Library exceptions are translated once into :class:`ModbusReadError` with a ``reason``
the poller can act on: ``connect`` (refused / unreachable), ``timeout``, ``exception``
(a Modbus exception response, e.g. illegal address) or ``io``. After a timeout or an
I/O error the connection is dropped, so a late answer can never be taken for the next.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Literal

from pymodbus.client import AsyncModbusTcpClient
from pymodbus.exceptions import ModbusException

log = logging.getLogger(__name__)

ReadFailure = Literal["connect", "timeout", "exception", "io"]


class ModbusReadError(Exception):
    def __init__(self, reason: ReadFailure, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason: ReadFailure = reason
        self.detail = detail


class ModbusEndpoint:
    """A lazily (re)connected client for one ``host:port``; requests are serialised."""

    def __init__(self, name: str, host: str, port: int, timeout_s: float) -> None:
        self.name = name
        self.host = host
        self.port = port
        self.timeout_s = timeout_s
        self._client: AsyncModbusTcpClient | None = None
        self._lock = asyncio.Lock()

    @property
    def connected(self) -> bool:
        return self._client is not None and self._client.connected

    async def _ensure_connected(self) -> AsyncModbusTcpClient:
        if self._client is not None and self._client.connected:
            return self._client
        self._drop()
        client = AsyncModbusTcpClient(
            self.host,
            port=self.port,
            timeout=self.timeout_s,
            retries=0,
            reconnect_delay=0,  # the poller owns retries and back-off
        )
        try:
            async with asyncio.timeout(self.timeout_s + 1.0):
                ok = await client.connect()
        except (TimeoutError, OSError) as exc:
            client.close()
            raise ModbusReadError("connect", f"{self.host}:{self.port}: {exc!r}") from None
        if not ok:
            client.close()
            raise ModbusReadError("connect", f"{self.host}:{self.port}: connection failed")
        self._client = client
        log.info("modbus endpoint %s connected to %s:%d", self.name, self.host, self.port)
        return client

    def _drop(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    async def read(self, unit_id: int, address: int, count: int) -> list[int]:
        """Read ``count`` holding registers (FC 3) of ``unit_id`` starting at ``address``."""
        async with self._lock:
            client = await self._ensure_connected()
            try:
                async with asyncio.timeout(self.timeout_s * 2 + 1.0):
                    response = await client.read_holding_registers(
                        address, count=count, device_id=unit_id
                    )
            except TimeoutError:
                self._drop()
                raise ModbusReadError("timeout", f"unit {unit_id} @{address}") from None
            except ModbusException as exc:
                self._drop()
                reason: ReadFailure = "timeout" if "timeout" in str(exc).lower() else "io"
                raise ModbusReadError(reason, f"unit {unit_id} @{address}: {exc}") from None
            except OSError as exc:
                self._drop()
                raise ModbusReadError("io", f"unit {unit_id} @{address}: {exc!r}") from None
            if response.isError():
                code = getattr(response, "exception_code", None)
                raise ModbusReadError("exception", f"unit {unit_id} @{address}: code {code}")
            registers = list(response.registers)
            if len(registers) < count:
                raise ModbusReadError("io", f"unit {unit_id} @{address}: short response")
            return registers[:count]

    def close(self) -> None:
        self._drop()
