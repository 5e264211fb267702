"""Validating a telemetry payload (orjson + pydantic via ``contracts.messages.decode``)
against the raw ``orjson.loads`` baseline of the same payloads.

    .venv/bin/python -m bench.decode [--messages 20000] [--readings 30]
"""

from __future__ import annotations

import argparse
import json
import time
import uuid
from datetime import UTC, datetime, timedelta

import orjson

from bench.common import report
from contracts.messages import decode
from contracts.timeutil import to_wire
from contracts.topics import Kind


def payload(seq: int, readings: int) -> bytes:
    ts = datetime.now(UTC)
    return json.dumps(
        {
            "v": 1,
            "stream_id": str(uuid.uuid4()),
            "seq": seq,
            "readings": [
                {
                    "device": f"SN{i}",
                    "ts": to_wire(ts + timedelta(seconds=i)),
                    "values": {
                        "pv_w": 1234.5 + i,
                        "pv_hz": 50.01,
                        "pv_wh": 1e6 + i,
                        "pv_l1_v": 230.1,
                        "pv_state_code": 4,
                    },
                }
                for i in range(readings)
            ],
        }
    ).encode()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--readings", type=int, default=30, help="readings per message")
    args = parser.parse_args()
    payloads = [payload(i + 1, args.readings) for i in range(args.messages)]
    t0 = time.perf_counter()
    for p in payloads:
        orjson.loads(p)
    baseline = args.messages / (time.perf_counter() - t0)
    t0 = time.perf_counter()
    for p in payloads:
        decode(Kind.TELEMETRY, p)
    rate = args.messages / (time.perf_counter() - t0)
    print(f"{args.messages:,} telemetry messages of {args.readings} readings")
    report("baseline: orjson.loads only", baseline, baseline, "msg/s")
    report("contracts.decode (orjson + pydantic)", rate, baseline, "msg/s")
    print(f"{'':<44} {rate * args.readings:>12,.0f} readings/s validated")


if __name__ == "__main__":
    main()
