"""A wave bigger than one chunk (issue 18, pool starvation under load): the whole wave is
signed by one round of the loop, but in transactions of at most ``PUSH_CHUNK`` gateways,
so the rollout's row lock and the round's connection are never held for a whole wave.

Real PostgreSQL; the witness of "one transaction" is PostgreSQL's own ``xmin`` (the id of
the transaction that last wrote a row) on each gateway's rollout row.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from itertools import groupby
from pathlib import Path

import psycopg
import pytest

from cloud.adapters.postgres import create_pool
from cloud.bootstrap import create_config_service, create_tracker
from cloud.config import ConfigService, ConfigSettings, write_key_file
from cloud.config.rollout_models import RolloutIn
from cloud.config.rollout_service import PUSH_CHUNK
from cloud.migrate import migrate
from contracts.messages import ProfileRef
from contracts.timeutil import utc_now
from tests.integration.test_config_service import INV, _birth

pytestmark = pytest.mark.integration

#: Two whole chunks and a part: 20 + 20 + 5 with the chunk of 20.
GATEWAYS = [f"gw-chunk-{i:02d}" for i in range(2 * PUSH_CHUNK + 5)]
PROFILE = ProfileRef(id="au-chunks", region="au", version=1)


@pytest.fixture
def service(database_url: str, tmp_path: Path) -> Iterator[ConfigService]:
    """The config service with no publisher (documents are stored, not sent) and every
    gateway known from a birth."""
    migrate(database_url)
    key_file = tmp_path / "cloud.pem"
    write_key_file(key_file, demo=True)
    settings = ConfigSettings(database_url=database_url, signing_key_file=key_file)
    pool = create_pool(database_url, max_size=4, name="test-rollout-chunks")
    try:
        tracker = create_tracker(settings, pool)
        for g in GATEWAYS:
            tracker.apply_birth(uuid.uuid4(), "au", utc_now(), _birth(g))
        yield create_config_service(settings, pool)
    finally:
        pool.close()


def test_a_wave_is_pushed_whole_in_transactions_of_one_chunk(
    service: ConfigService, database_url: str
) -> None:
    created = service.rollouts.create(
        "au",
        RolloutIn(
            profile=PROFILE,
            settings={"sim-inverter-103": {"v_ref": 236}},
            target={"gateways": GATEWAYS},
            canary=len(GATEWAYS),
            reason="volt reference to 236 V",
        ),
        "operator:ana",
    )
    # The whole canary was pushed by the round the creation ran, none left for the next.
    assert {g.gateway_id: g.status for g in created.gateway_steps} == {
        g: "pending" for g in GATEWAYS
    }
    desired = {g: service.show_config(g).desired for g in GATEWAYS}
    assert {g: d.devices if d else None for g, d in desired.items()} == {
        g: {INV: {"v_ref": 236}} for g in GATEWAYS
    }
    with psycopg.connect(database_url) as conn:
        writers = [
            row[0]
            for row in conn.execute(
                "SELECT xmin::text FROM config.rollout_gateways WHERE rollout_id = %s"
                " ORDER BY position",
                (created.id,),
            )
        ]
    # In the rollout's order: 20, 20 and 5 gateways, each group written by one transaction.
    assert [len(list(rows)) for _, rows in groupby(writers)] == [20, 20, 5]
    assert len(set(writers)) == 3
