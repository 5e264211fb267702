-- The read-only role Grafana's datasource logs in through (docs/brokers.md, "Grafana"):
-- SELECT on exactly the relations the dashboards read, nothing else (no raw readings:
-- curves come from the rollups). Idempotent: run it again after a migration that
-- replaces one of these relations. tests/integration/test_grafana_sql.py runs every
-- panel as this role.
DO $$
BEGIN
    CREATE ROLE potr_grafana_read NOLOGIN;
EXCEPTION WHEN duplicate_object OR unique_violation THEN
    NULL; -- made before (or by a concurrent run)
END
$$;

GRANT USAGE ON SCHEMA telemetry, ingest TO potr_grafana_read;
GRANT SELECT ON
    telemetry.metrics,
    telemetry.rollup_5m,
    telemetry.rollup_1h,
    telemetry.rollup_1d,
    telemetry.energy_15m,
    ingest.gateways,
    ingest.device_keys,
    ingest.sessions,
    ingest.presence,
    ingest.streams,
    ingest.gaps,
    ingest.dead_letters
TO potr_grafana_read;
