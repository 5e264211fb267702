"""Adapters to outside servers and libraries: PostgreSQL (``postgres``, the only cloud
module importing psycopg), MQTT (``mqtt``, the only cloud module importing paho), SMTP
(``smtp``) and pvlib (``solar``: clear-sky expectation and daylight)."""
