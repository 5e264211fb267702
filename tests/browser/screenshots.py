"""Screenshots of the portal's screens, one per role, from a running demo, into
docs/screenshots/ (desktop, and the MOSIE's on a 360-px phone).

    .venv/bin/python -m tests.browser.screenshots [--out docs/screenshots]

Needs what the browser tests need (scripts/bootstrap.sh test: Debian's chromium); the
demo runs on an embedded PostgreSQL (or POTR_DATABASE_URL) and a private Mosquitto.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import queue
import threading
from pathlib import Path
from typing import Any

from playwright.sync_api import sync_playwright
from rich.console import Console

from potr.demo import DemoStack, demo_stack
from potr.demo_people import DemoLogin
from tests.browser.chromium import CHROMIUM, LAUNCH_ARGS
from tests.browser.signin import sign_in


def shoot(stack: DemoStack, out: Path) -> None:
    people: dict[str, DemoLogin] = {}
    for person in stack.people:  # the first of each: "mosie" is the AU one (printed first)
        key = "customer-" + person.region if person.role == "customer" else person.role
        people.setdefault(key, person)
    url, au = stack.url, stack.sites["au"]
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=LAUNCH_ARGS)
        shots: list[tuple[str, str, str, dict[str, Any]]] = [
            ("customer-site", "customer-au", f"/ui/au/sites/{au}", {}),
            (
                "customer-site-es",
                "customer-es",
                f"/ui/es/sites/{stack.sites['es']}",
                {"locale": "es-ES"},
            ),
            (
                "mosie-phone",
                "mosie",
                f"/ui/au/sites/{au}",
                {"viewport": {"width": 360, "height": 740}, "is_mobile": True},
            ),
            ("support-search", "support", "/ui/au/support?q=demo", {}),
            ("operator-fleet", "operator", "/ui/au/fleet", {}),
            ("operator-gateway", "operator", "/ui/au/gateways/demo-au-01", {}),
        ]
        for name, who, path, options in shots:
            context = browser.new_context(**options)
            page = context.new_page()
            sign_in(page, url, people[who])
            page.goto(url + path)
            if "/sites/" in path:
                page.wait_for_function(
                    "() => Number(document.querySelector('#today-chart').dataset.points || 0) > 0"
                )
            page.screenshot(path=str(out / f"{name}.png"), full_page=True)
            print(f"wrote {out / name}.png")
            context.close()
        browser.close()


async def main(out: Path, warmup_s: float) -> None:
    async with demo_stack(broker="auto", console=Console(file=io.StringIO())) as stack:
        # Let the telemetry job compute some energy and presence be announced.
        await asyncio.sleep(warmup_s)
        done: queue.Queue[BaseException | None] = queue.Queue()

        def run() -> None:
            try:
                shoot(stack, out)
                done.put(None)
            except BaseException as exc:
                done.put(exc)

        threading.Thread(target=run, daemon=True).start()
        failed = await asyncio.to_thread(done.get)
        if failed is not None:
            raise failed


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=Path("docs/screenshots"))
    parser.add_argument("--warmup", type=float, default=25.0, help="seconds before the first shot")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    asyncio.run(main(args.out, args.warmup))
