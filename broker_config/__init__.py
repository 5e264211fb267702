"""Broker configuration: Mosquitto configs per region, credentials and ACLs, amqtt for the demo."""
