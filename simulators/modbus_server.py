"""The simulators' only pymodbus module: a Modbus TCP server over live register images.

Each unit id gets one ``SimData`` block of holding registers at its image's base address
(pymodbus 3.16's simulator classes serve the block at that exact protocol address). The
served registers follow :meth:`ImageServer.publish` on every request, so images can be
swapped atomically between requests; writes inside an allowed window are accepted,
copied into the image, and reported to ``on_write``.
"""

from __future__ import annotations

import errno
import logging
import socket
from collections.abc import Callable
from dataclasses import dataclass

from pymodbus.constants import ExcCodes
from pymodbus.server import ModbusTcpServer
from pymodbus.simulator import DataType, SimData, SimDevice

log = logging.getLogger(__name__)

WRITE_CODES = frozenset({6, 16, 22, 23})
WriteHandler = Callable[[int, int, list[int]], None]


@dataclass(slots=True)
class _Image:
    base: int
    registers: list[int]
    writable: list[tuple[int, int]]  # inclusive address ranges


def free_port(host: str = "127.0.0.1") -> int:
    """A port the OS reports free right now (the caller retries on EADDRINUSE)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


class ImageServer:
    """Serve ``{unit_id: image}`` over Modbus TCP; use ``async with`` inside a running loop."""

    def __init__(
        self,
        host: str,
        port: int,
        images: dict[int, tuple[int, list[int]]],
        *,
        writable: dict[int, list[tuple[int, int]]] | None = None,
        on_write: WriteHandler | None = None,
    ) -> None:
        self._host = host
        self._requested_port = port
        self._images = {
            unit: _Image(base, list(regs), (writable or {}).get(unit, []))
            for unit, (base, regs) in images.items()
        }
        self._on_write = on_write
        self._server: ModbusTcpServer | None = None
        self.port = 0

    def publish(self, unit_id: int, registers: list[int]) -> None:
        """Serve ``registers`` for ``unit_id`` from the next request on (same length)."""
        image = self._images[unit_id]
        if len(registers) != len(image.registers):
            raise ValueError("an image keeps its length while served")
        image.registers = list(registers)

    def registers(self, unit_id: int) -> list[int]:
        return list(self._images[unit_id].registers)

    def _device(self, unit_id: int) -> SimDevice:
        image = self._images[unit_id]

        async def action(
            function_code: int,
            start_address: int,
            address: int,
            count: int,
            current: list[int],
            set_values: list[int] | list[bool] | None,
        ) -> ExcCodes | None:
            offset = image.base - start_address
            current[offset : offset + len(image.registers)] = image.registers
            if function_code in WRITE_CODES and set_values is not None:
                last = address + count - 1
                if not any(lo <= address and last <= hi for lo, hi in image.writable):
                    return ExcCodes.ILLEGAL_ADDRESS
                values = [int(v) for v in set_values]
                rel = address - image.base
                image.registers[rel : rel + len(values)] = values
                if self._on_write is not None:
                    self._on_write(unit_id, address, values)
            return None

        block = SimData(
            address=image.base, values=list(image.registers), datatype=DataType.REGISTERS
        )
        return SimDevice(id=unit_id, simdata=[block], action=action)

    async def start(self) -> None:
        devices = [self._device(unit) for unit in sorted(self._images)]
        # Unit id 0 stands for "any other unit": answer those with an exception.
        devices.append(SimDevice(id=0, simdata=[SimData(address=0, datatype=DataType.INVALID)]))
        attempts = 1 if self._requested_port else 5
        for attempt in range(attempts):
            port = self._requested_port or free_port(self._host)
            server = ModbusTcpServer(devices, address=(self._host, port))
            try:
                await server.serve_forever(background=True)
            except RuntimeError as exc:
                await server.shutdown()  # type: ignore[no-untyped-call]
                if attempt + 1 == attempts:
                    raise OSError(
                        errno.EADDRINUSE, f"cannot listen on {self._host}:{port}"
                    ) from exc
                continue
            self._server = server
            self.port = port
            log.info(
                "modbus simulator listening on %s:%d units=%s",
                self._host,
                port,
                sorted(self._images),
            )
            return

    async def stop(self) -> None:
        if self._server is not None:
            await self._server.shutdown()  # type: ignore[no-untyped-call]
            self._server = None

    async def __aenter__(self) -> ImageServer:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()
