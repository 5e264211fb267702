"""The agent's only pymodbus module: one client per endpoint (a Modbus TCP connection or
a Modbus RTU serial line shared by its units; requests on it are serialised).

Library exceptions are translated once into :class:`ModbusReadError` with a ``reason``
the poller can act on: ``connect`` (refused / unreachable), ``timeout``, ``exception``
(a Modbus exception response, e.g. illegal address) or ``io``. After a timeout or an
I/O error (or a request cancelled) the connection is dropped, so a late answer can never
be taken for the next. A cancel pymodbus loses (:mod:`edge_agent.cancellation`) is raised
as the request returns.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any, Literal

from pymodbus.client import AsyncModbusSerialClient, AsyncModbusTcpClient
from pymodbus.exceptions import ModbusException

from edge_agent.cancellation import honour_cancel
from edge_agent.settings import EndpointSettings, RtuEndpointSettings

log = logging.getLogger(__name__)

ReadFailure = Literal["connect", "timeout", "exception", "io"]


class ModbusReadError(Exception):
    def __init__(self, reason: ReadFailure, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason: ReadFailure = reason
        self.detail = detail


class ModbusWriteError(Exception):
    """A write that did not happen (or may not have): ``reason`` as for reads."""

    def __init__(self, reason: ReadFailure, detail: str) -> None:
        super().__init__(f"write {reason}: {detail}")
        self.reason: ReadFailure = reason
        self.detail = detail


class ModbusEndpoint:
    """A lazily (re)connected Modbus TCP client for one ``host:port``; requests are
    serialised. Subclasses change only how the client is made and named."""

    def __init__(self, name: str, host: str, port: int, timeout_s: float) -> None:
        self.name = name
        self.host = host
        self.port = port
        self.timeout_s = timeout_s
        self._client: AsyncModbusTcpClient | AsyncModbusSerialClient | None = None
        self._lock = asyncio.Lock()

    @property
    def target(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def connected(self) -> bool:
        return self._client is not None and self._client.connected

    def _make_client(self) -> AsyncModbusTcpClient | AsyncModbusSerialClient:
        return AsyncModbusTcpClient(
            self.host,
            port=self.port,
            timeout=self.timeout_s,
            retries=0,
            reconnect_delay=0,  # the poller owns retries and back-off
        )

    async def _ensure_connected(self) -> AsyncModbusTcpClient | AsyncModbusSerialClient:
        if self._client is not None and self._client.connected:
            return self._client
        self._drop()
        client = self._make_client()
        try:
            async with asyncio.timeout(self.timeout_s + 1.0):
                with honour_cancel():
                    ok = await client.connect()
        except (TimeoutError, OSError) as exc:
            client.close()
            raise ModbusReadError("connect", f"{self.target}: {exc!r}") from None
        except asyncio.CancelledError:
            client.close()
            raise
        if not ok:
            client.close()
            raise ModbusReadError("connect", f"{self.target}: connection failed")
        self._client = client
        log.info("modbus endpoint %s connected to %s", self.name, self.target)
        return client

    def _drop(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    async def _request(
        self,
        where: str,
        call: Callable[[AsyncModbusTcpClient | AsyncModbusSerialClient], Awaitable[Any]],
        error: type[ModbusReadError] | type[ModbusWriteError],
    ) -> Any:
        """One request under the endpoint's lock, its library errors translated once into
        ``error`` (after a timeout or I/O error the connection is dropped: a late answer
        must never be taken for the next request's)."""
        async with self._lock:
            try:
                client = await self._ensure_connected()
            except ModbusReadError as exc:
                raise error(exc.reason, exc.detail) from None
            try:
                async with asyncio.timeout(self.timeout_s * 2 + 1.0):
                    with honour_cancel():  # pymodbus's wait_for can lose a cancel
                        response = await call(client)
            except asyncio.CancelledError:
                self._drop()  # the answer may still come: never for the next request
                raise
            except TimeoutError:
                self._drop()
                raise error("timeout", where) from None
            except ModbusException as exc:
                self._drop()
                text = str(exc).lower()
                silent = "timeout" in text or "no response" in text
                raise error("timeout" if silent else "io", f"{where}: {exc}") from None
            except OSError as exc:
                self._drop()
                raise error("io", f"{where}: {exc!r}") from None
            if response.isError():
                code = getattr(response, "exception_code", None)
                raise error("exception", f"{where}: code {code}")
            return response

    async def read(self, unit_id: int, address: int, count: int) -> list[int]:
        """Read ``count`` holding registers (FC 3) of ``unit_id`` starting at ``address``."""
        where = f"unit {unit_id} @{address}"
        response = await self._request(
            where,
            lambda c: c.read_holding_registers(address, count=count, device_id=unit_id),
            ModbusReadError,
        )
        registers = list(response.registers)
        if len(registers) < count:
            raise ModbusReadError("io", f"{where}: short response")
        return registers[:count]

    async def write(self, unit_id: int, address: int, registers: list[int]) -> None:
        """Write ``registers`` (FC 16) to ``unit_id`` from ``address``; raises
        :class:`ModbusWriteError` (a timeout means the write may have happened)."""
        values = list(registers)
        await self._request(
            f"unit {unit_id} @{address}",
            lambda c: c.write_registers(address, values, device_id=unit_id),
            ModbusWriteError,
        )

    def close(self) -> None:
        self._drop()


class ModbusRtuEndpoint(ModbusEndpoint):
    """One RS485 line: a single serial client shared by every unit on it."""

    def __init__(
        self,
        name: str,
        serial_port: str,
        *,
        baudrate: int,
        parity: str = "N",
        stopbits: int = 1,
        bytesize: int = 8,
        timeout_s: float,
    ) -> None:
        super().__init__(name, serial_port, 0, timeout_s)
        self.baudrate, self.parity = baudrate, parity
        self.stopbits, self.bytesize = stopbits, bytesize

    @property
    def target(self) -> str:
        return f"{self.host} {self.baudrate} {self.bytesize}{self.parity}{self.stopbits}"

    def _make_client(self) -> AsyncModbusSerialClient:
        return AsyncModbusSerialClient(
            self.host,
            baudrate=self.baudrate,  # always explicit: pymodbus would assume 19200
            parity=self.parity,
            stopbits=self.stopbits,
            bytesize=self.bytesize,
            timeout=self.timeout_s,
            retries=0,
            reconnect_delay=0,
        )


def open_endpoint(settings: EndpointSettings | RtuEndpointSettings) -> ModbusEndpoint:
    """The client for one configured endpoint (nothing is connected yet)."""
    if isinstance(settings, RtuEndpointSettings):
        return ModbusRtuEndpoint(
            settings.name,
            settings.serial_port,
            baudrate=settings.baudrate,
            parity=settings.parity,
            stopbits=settings.stopbits,
            bytesize=settings.bytesize,
            timeout_s=settings.timeout_s,
        )
    return ModbusEndpoint(settings.name, settings.host, settings.port, settings.timeout_s)
