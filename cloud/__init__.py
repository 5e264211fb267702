"""Cloud services, one package per business capability, each owning its schema.

Each service owns its settings class (``POTR_*`` environment; shared pieces in
:mod:`cloud.settings`), and :mod:`cloud.bootstrap` assembles every process from them::

    ingest = IngestSettings()                                  # cloud.ingest
    pool = open_pool(ingest, "ingest")                         # cloud.bootstrap
    await run_ingest(ingest, stop)                             # one worker
    app = create_api(ApiSettings(), pool, config=...)          # cloud.portal's app

``potr`` (the CLI, the demo) and the tests call those builders; nothing else wires a
process. Within ``cloud`` a service imports only another service's package (its
``__init__``), never its modules; only ``adapters/postgres.py`` imports psycopg and only
``adapters/mqtt.py`` imports paho.
"""
