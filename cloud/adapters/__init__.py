"""Adapters to outside servers: PostgreSQL (``postgres``, the only cloud module importing
psycopg) and MQTT (``mqtt``, the only cloud module importing paho)."""
