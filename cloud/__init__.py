"""Cloud services, one package per business capability, each owning its schema.

Composition (done by ``potr``, the only package that wires everything)::

    settings = CloudSettings()                       # POTR_* environment
    migrate(settings.database_url)                   # cloud.migrate
    pool = create_pool(settings.database_url)        # cloud.adapters.postgres
    registry = RegistryService(pool)                 # cloud.registry
    worker = IngestWorker(settings, registry)        # cloud.ingest; or await run_ingest(...)
    worker.start()                                   # ... worker.stop()
    app = create_app(settings, registry, TelemetryReader(pool))   # cloud.portal
    uvicorn.run(app, host=settings.api_host, port=settings.api_port)

Within ``cloud`` a service imports only another service's package (its ``__init__``),
never its modules; only ``common/db.py`` imports psycopg and only ``common/mqtt.py``
imports paho.
"""
