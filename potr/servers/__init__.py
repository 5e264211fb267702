"""Private server processes for the demo and the test fixtures (PostgreSQL, PGlite with
TimescaleDB, Mosquitto, amqtt).

Each starts on a free loopback port, says where it is, and stops what it started by
process id — never a server it did not start.
"""
