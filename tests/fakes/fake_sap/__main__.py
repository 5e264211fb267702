"""Run the fake SAP: ``python -m tests.fakes.fake_sap --port 0``; prints
``FAKE_SAP_PORT <port>`` once it listens, then serves until terminated."""

from __future__ import annotations

import argparse
import sys

from mocksap.server import Config

from tests.fakes.fake_sap.schema import correct
from tests.fakes.fake_sap.server import FakeState, make_fake_server


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="fake_sap")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--partner-service", default="API_BUSINESS_PARTNER")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--error-rate", type=float, default=0.0)
    parser.add_argument("--csrf-expiry-rate", type=float, default=0.0)
    parser.add_argument("--stall-rate", type=float, default=0.0)
    parser.add_argument("--stall-s", type=float, default=2.0)
    parser.add_argument("--closed-period", action="append", default=[])
    args = parser.parse_args(argv)

    fake = FakeState(
        seed=args.seed,
        csrf_expiry_rate=args.csrf_expiry_rate,
        stall_rate=args.stall_rate,
        stall_s=args.stall_s,
        closed_periods=set(args.closed_period),
    )
    correct(partner_service=args.partner_service, closed=fake.is_closed)
    config = Config(
        host=args.host,
        port=args.port,
        quiet=True,
        error_rate=args.error_rate,
        seed_value=args.seed,
    )
    httpd = make_fake_server(config, fake)
    print(f"FAKE_SAP_PORT {httpd.server_address[1]}", flush=True)
    try:
        httpd.serve_forever(poll_interval=0.1)
    except KeyboardInterrupt:
        pass
    finally:
        httpd.server_close()
    sys.exit(0)


if __name__ == "__main__":
    main()
