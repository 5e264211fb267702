"""``potr billing cycle`` on real PostgreSQL: a period is billed once (a second run
issues nothing and says so), and a malformed period is refused before anything runs."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from typer.testing import CliRunner

from potr.cli import app
from tests.integration.api_world import migrated_database

pytestmark = pytest.mark.integration

ARGS = ["billing", "cycle", "--region", "es", "--run-by", "admin-test"]


@pytest.fixture(scope="module")
def url(postgres_server_url: str) -> Iterator[str]:
    with migrated_database(postgres_server_url) as migrated:
        yield migrated


def test_a_period_is_billed_once(url: str) -> None:
    env = {"POTR_DATABASE_URL": url}
    first = CliRunner().invoke(app, [*ARGS, "--month", "2026-10"], env=env)
    assert first.exit_code == 0, first.output
    assert "es 2026-10-01…2026-10-31: billed, 0 invoice(s) issued now" in first.output
    again = CliRunner().invoke(app, [*ARGS, "--month", "2026-10"], env=env)
    assert again.exit_code == 0, again.output
    assert "already_billed" in again.output


@pytest.mark.parametrize(
    ("extra", "said"),
    [
        (["--month", "2026-13"], "month must be YYYY-MM"),
        (["--month", "2026-11", "--cycle", "quarterly"], "a quarter starts in"),
        (["--month", "2026-10", "--cycle", "yearly"], "yearly"),
        # A period that has not ended yet anywhere.
        (["--month", "2099-12"], "has not ended everywhere in es"),
    ],
)
def test_a_malformed_period_is_refused(url: str, extra: list[str], said: str) -> None:
    result = CliRunner().invoke(app, [*ARGS, *extra], env={"POTR_DATABASE_URL": url})
    assert result.exit_code == 2
    assert said in result.output


def test_reminders_run_twice_send_nothing_new_and_a_bad_date_is_refused(url: str) -> None:
    env = {"POTR_DATABASE_URL": url}
    args = ["billing", "reminders", "--region", "es"]
    for _ in range(2):
        result = CliRunner().invoke(app, [*args, "--as-of", "2026-12-31"], env=env)
        assert result.exit_code == 0, result.output
        assert "es as of 2026-12-31: 0 reminder(s) sent" in result.output
    bad = CliRunner().invoke(app, [*args, "--as-of", "2026-12-32"], env=env)
    assert bad.exit_code == 2
    assert "as-of must be YYYY-MM-DD" in bad.output


def test_cancelling_an_unknown_invoice_fails_with_the_reason(url: str) -> None:
    result = CliRunner().invoke(
        app,
        ["billing", "cancel", "--number", "ES-2026-0999999", "--reason", "x", "--by", "admin"],
        env={"POTR_DATABASE_URL": url},
    )
    assert result.exit_code == 1
    assert "no document ES-2026-0999999" in result.output
