"""Events between services: the model with its outbox and inbox (``outbox``), the payload
types (``types``), the bus interface and its engines (``bus`` in-process, ``amqp``
RabbitMQ), the outbox relay (``relay``) and the runtime that wires them (``runtime``)."""
