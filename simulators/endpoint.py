"""A Modbus endpoint (TCP listener or RTU serial line) serving emulated devices live.

The simulators' only pymodbus module.

Every request copies the addressed device's current registers into pymodbus's block, so
values are never stale and writes go through :meth:`EmulatedDevice.check_write`. Faults
act here: no answer, exception answers, slow answers, one TCP connection at a time, and
sleep (the TCP listener closes: connections are refused; an RTU line stays silent).
Applied writes land after ``write_latency_s`` real seconds. Every write request that
reaches a device (one not swallowed by ``no_response``) is appended to ``write_log``.
"""

from __future__ import annotations

import asyncio
import errno
import logging
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from pymodbus.constants import ExcCodes
from pymodbus.exceptions import NoSuchIdException
from pymodbus.framer import FramerType
from pymodbus.server import ModbusSerialServer, ModbusTcpServer
from pymodbus.server.requesthandler import ServerRequestHandler
from pymodbus.simulator import DataType, SimData, SimDevice

from simulators.emulated import EmulatedDevice, PendingWrite
from simulators.write_log import Outcome, WriteFailure, WriteRecord, match_refs

__all__ = ["DeviceEndpoint", "Gate"]

log = logging.getLogger(__name__)

WRITE_CODES = frozenset({6, 16, 22, 23})


class Gate:
    """What the fault board says about a request to ``unit`` right now (see faults.py)."""

    def no_response(self, unit: int) -> bool:
        return False

    def exception(self, unit: int) -> int | None:
        return None

    def delay_s(self, unit: int) -> float:
        return 0.0

    def single_connection(self) -> bool:
        return False

    def write_failure(self, unit: int, refs: frozenset[str]) -> WriteFailure | None:
        """How to fail a valid write to ``refs`` (indexed and unindexed), or ``None``.

        Called once per write the device would accept: a fault limited to N writes counts it.
        """
        return None


def _request(
    device: EmulatedDevice, function_code: int, address: int, values: list[int]
) -> WriteRecord:
    """A write as it arrives (outcome filled in later), decoded before anything is applied
    so the points use the scale factors the writer saw."""
    return WriteRecord(
        ts=datetime.now(UTC),
        unit_id=device.unit_id,
        function_code=function_code,
        address=address,
        registers=tuple(values),
        outcome="applied",
        points=device.decode_write(address, values),
    )


class _RefusingHandler(ServerRequestHandler):
    def connection_made(self, transport: Any) -> None:
        super().connection_made(transport)
        self.close()


class _TcpServer(ModbusTcpServer):
    gate: Gate

    def callback_new_connection(self) -> Any:
        if self.gate.single_connection() and self.active_connections:
            return _RefusingHandler(  # type: ignore[no-untyped-call]
                self, self.trace_packet, self.trace_pdu, self.trace_connect
            )
        return super().callback_new_connection()  # type: ignore[no-untyped-call]


class DeviceEndpoint:
    """Serve ``devices`` on TCP ``host:port`` (``port`` 0 = free) or on ``serial_port``."""

    def __init__(
        self,
        devices: list[EmulatedDevice],
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        serial_port: str | None = None,
        baudrate: int = 9600,
        gate: Gate | None = None,
        write_latency_s: float | Callable[[int], float] = 0.0,
        on_applied: Callable[[int], None] | None = None,
    ) -> None:
        self.devices = {d.unit_id: d for d in devices}
        self.host = host
        self.port = port
        self.serial_port = serial_port
        self.baudrate = baudrate
        self.gate = gate or Gate()
        self._latency = write_latency_s
        self._listeners: list[Callable[[int], object]] = []
        if on_applied is not None:
            self._listeners.append(on_applied)
        self._server: ModbusTcpServer | ModbusSerialServer | None = None
        self.asleep = False
        self.write_log: list[WriteRecord] = []

    def _latency_s(self, unit: int) -> float:
        return self._latency(unit) if callable(self._latency) else self._latency

    def on_applied(self, listener: Callable[[int], object]) -> None:
        """Call ``listener(unit_id)`` whenever a write has been applied (after its latency)."""
        self._listeners.append(listener)

    def _apply(self, device: EmulatedDevice, pending: PendingWrite) -> None:
        device.apply(pending)
        for listener in self._listeners:
            listener(device.unit_id)

    def _record(
        self, request: WriteRecord, outcome: Outcome, exception_code: int | None = None
    ) -> None:
        self.write_log.append(replace(request, outcome=outcome, exception_code=exception_code))

    def _write(self, device: EmulatedDevice, request: WriteRecord) -> int | None:
        """Check, log and apply (or fail) one write; the exception code to answer, if any."""
        result = device.check_write(request.address, list(request.registers))
        if isinstance(result, int):
            self._record(request, "refused", result)
            return result
        failure = self.gate.write_failure(device.unit_id, match_refs(request.points))
        if failure is not None:
            code = failure.code if failure.mode == "exception" else None
            self._record(request, "faulted", code)
            return code
        self._record(request, "applied")
        latency = self._latency_s(device.unit_id)
        if latency > 0:
            asyncio.get_running_loop().call_later(latency, self._apply, device, result)
        else:
            self._apply(device, result)
        return None

    def _sim_device(self, device: EmulatedDevice) -> SimDevice:
        blocks = [
            SimData(address=device.base, values=[0] * device.size, datatype=DataType.REGISTERS)
        ]
        vendor = device.vendor_registers()
        if vendor is not None:
            blocks.append(SimData(address=vendor[0], values=vendor[1], datatype=DataType.REGISTERS))
        blocks.sort(key=lambda b: b.address)

        async def action(
            function_code: int,
            start_address: int,
            address: int,
            count: int,
            current: list[int],
            set_values: list[int] | list[bool] | None,
        ) -> ExcCodes | None:
            unit = device.unit_id
            if self.asleep or self.gate.no_response(unit):
                raise NoSuchIdException(f"unit {unit} does not answer (fault)")
            delay = self.gate.delay_s(unit)
            if delay > 0:
                await asyncio.sleep(delay)
            write = None
            if function_code in WRITE_CODES and set_values is not None:
                write = _request(device, function_code, address, [int(v) for v in set_values])
            code = self.gate.exception(unit)
            if code is not None:
                if write is not None:
                    self._record(write, "faulted", code)
                return ExcCodes(code)
            offset = device.base - start_address
            current[offset : offset + device.size] = device.registers
            vendor = device.vendor_registers()
            if vendor is not None:
                current[vendor[0] - start_address : vendor[0] - start_address + len(vendor[1])] = (
                    vendor[1]
                )
            if write is not None:
                code = self._write(device, write)
                return None if code is None else ExcCodes(code)
            return None

        return SimDevice(id=device.unit_id, simdata=blocks, action=action)

    def _context(self) -> list[SimDevice]:
        sims = [self._sim_device(d) for _, d in sorted(self.devices.items())]
        # unit id 0 stands for "any other unit": answer those with an exception
        sims.append(SimDevice(id=0, simdata=[SimData(address=0, datatype=DataType.INVALID)]))
        return sims

    async def start(self) -> None:
        if self.serial_port is not None:
            server = ModbusSerialServer(
                self._context(),
                framer=FramerType.RTU,
                port=self.serial_port,
                baudrate=self.baudrate,
                ignore_missing_devices=True,
            )
            await server.serve_forever(background=True)
            self._server = server
            log.info("modbus RTU simulator on %s units=%s", self.serial_port, sorted(self.devices))
            return
        await self._listen()

    async def _listen(self) -> None:
        # Port 0: the OS picks a free port at bind time (no probe-then-bind race); it is
        # kept, so a device that sleeps and wakes listens on the same port again.
        port = self.port or 0
        server = _TcpServer(self._context(), address=(self.host, port), ignore_missing_devices=True)
        server.gate = self.gate
        try:
            await server.serve_forever(background=True)
        except RuntimeError as exc:
            await server.shutdown()  # type: ignore[no-untyped-call]
            raise OSError(errno.EADDRINUSE, f"cannot listen on {self.host}:{port}") from exc
        self._server = server
        listener = server.transport  # pymodbus keeps the asyncio.Server of a listener here
        if not isinstance(listener, asyncio.Server):
            raise RuntimeError(f"pymodbus listener is a {type(listener).__name__}, not a server")
        self.port = int(listener.sockets[0].getsockname()[1])
        log.info(
            "modbus TCP simulator on %s:%d units=%s", self.host, self.port, sorted(self.devices)
        )

    async def sleep(self) -> None:
        """Night: TCP connections are refused (the listener closes); RTU stays silent."""
        if self.asleep:
            return
        self.asleep = True
        if self.serial_port is None and self._server is not None:
            await self._server.shutdown()  # type: ignore[no-untyped-call]
            self._server = None
            log.info("modbus simulator %s:%d asleep", self.host, self.port)

    async def wake(self) -> None:
        if not self.asleep:
            return
        self.asleep = False
        if self.serial_port is None and self._server is None:
            for _ in range(50):  # the port was ours a moment ago; retry a busy bind briefly
                try:
                    await self._listen()
                    return
                except OSError:
                    await asyncio.sleep(0.05)
            raise OSError(errno.EADDRINUSE, f"cannot listen again on {self.host}:{self.port}")

    async def stop(self) -> None:
        if self._server is not None:
            await self._server.shutdown()  # type: ignore[no-untyped-call]
            self._server = None

    async def __aenter__(self) -> DeviceEndpoint:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()
