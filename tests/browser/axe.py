"""Accessibility checks with axe-core (tools/portal-assets, installed by npm ci).

axe is injected with ``page.evaluate`` (the DevTools protocol), not a script tag: the
portal's Content-Security-Policy forbids inline scripts, and the protocol is not bound
by it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page

__all__ = ["AXE_SCRIPT", "assert_accessible", "violations"]

AXE_SCRIPT = (
    Path(__file__).resolve().parents[2]
    / "tools"
    / "portal-assets"
    / "node_modules"
    / "axe-core"
    / "axe.min.js"
)
RULE_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "best-practice"]
_RUN = """tags => axe.run(document, {runOnly: tags}).then(result => result.violations.map(v => ({
    id: v.id, impact: v.impact, help: v.help,
    targets: v.nodes.slice(0, 3).map(n => n.target.join(' ')),
})))"""


def _inject(page: Page) -> None:
    if page.evaluate("typeof window.axe === 'undefined'"):
        if not AXE_SCRIPT.is_file():
            pytest.fail(f"{AXE_SCRIPT} is missing: run scripts/bootstrap.sh test")
        page.evaluate(AXE_SCRIPT.read_text(encoding="utf-8"))


def violations(page: Page) -> list[dict[str, Any]]:
    """axe's WCAG 2.1 A/AA and best-practice violations on the page as it is now."""
    _inject(page)
    found: list[dict[str, Any]] = page.evaluate(_RUN, RULE_TAGS)
    return found


def assert_accessible(page: Page, *, context: str = "") -> None:
    """Fail listing each axe violation (id, impact, help, first targets) on ``page``."""
    found = violations(page)
    if found:
        lines = [
            f"  {v['id']} ({v['impact']}): {v['help']} at {', '.join(v['targets'])}" for v in found
        ]
        where = context or page.url
        pytest.fail(f"axe: {len(found)} violation(s) on {where}:\n" + "\n".join(lines))
