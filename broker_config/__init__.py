"""Server configs as text: Mosquitto per region (credentials, ACLs, CA), amqtt for the demo,
and the nginx API gateway."""
