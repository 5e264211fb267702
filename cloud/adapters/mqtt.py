"""The MQTT adapter: the only cloud module that imports paho-mqtt.

:class:`MqttConsumer` is a persistent-session client with manual acknowledgements:
messages reach ``on_message`` on paho's network thread, and the caller acknowledges
them later with :meth:`MqttConsumer.ack` (thread-safe: paho queues the PUBACK under its
own lock and wakes its loop, exactly as it does for ``publish`` from another thread).

TLS (``MqttOptions.tls``) verifies the broker's certificate chain against ``ca_file``
(else the system's CAs) and its name against the host connected to; a client
certificate (``cert_file``, ``key_file``) may stand in for a password. The password is
a ``SecretStr`` until paho needs it, and no log line here names it.
"""

from __future__ import annotations

import logging
import ssl
import sys
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from pydantic import SecretStr

from contracts.timeutil import utc_now

log = logging.getLogger(__name__)


class MqttError(RuntimeError):
    """Connecting, subscribing or publishing failed."""


@dataclass(frozen=True, slots=True)
class InboundMessage:
    topic: str
    payload: bytes
    mid: int
    qos: int
    received_at: datetime
    dup: bool = False
    #: Which connection delivered it; an ack is only valid on that same connection.
    connection: int = 0


@dataclass(frozen=True)
class MqttOptions:
    host: str
    port: int
    client_id: str
    protocol: Literal["5", "3.1.1"] = "5"
    username: str | None = None
    password: SecretStr | None = None
    keepalive_s: int = 30
    session_expiry_s: int = 86_400
    receive_maximum: int = 1_000
    #: ``mqtts://``: TLS, the broker verified against ``ca_file`` (None: the system's CAs).
    tls: bool = False
    ca_file: str | None = None
    #: A client certificate and its private key (PEM), for brokers that ask for one.
    cert_file: str | None = None
    key_file: str | None = None

    @property
    def where(self) -> str:
        """``mqtts://user@host:port``: how logs name the broker (never with a password)."""
        user = f"{self.username}@" if self.username else ""
        return f"{'mqtts' if self.tls else 'mqtt'}://{user}{self.host}:{self.port}"


def tls_context(options: MqttOptions) -> ssl.SSLContext:
    """A client context that requires the broker's certificate, checks its name, speaks
    TLS 1.2 or later, and presents ``cert_file`` when given."""
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=options.ca_file)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    if options.cert_file is not None:
        context.load_cert_chain(options.cert_file, options.key_file)
    return context


def _configure(client: paho.Client, options: MqttOptions) -> None:
    """TLS and credentials, right before the first connect."""
    if options.tls:
        try:
            client.tls_set_context(tls_context(options))
        except (OSError, ValueError) as exc:  # ssl.SSLError is an OSError
            raise MqttError(f"TLS setup for {options.where} failed: {exc}") from exc
    if options.username is not None:
        password = options.password.get_secret_value() if options.password else None
        client.username_pw_set(options.username, password)


class _ConnectFailures:
    """Logs a failing background (re)connect once per streak, with its reason: paho calls
    ``on_connect_fail`` from inside its ``except OSError`` block, so the exception in
    hand is the reason (a TLS refusal names the certificate problem)."""

    def __init__(self, client: paho.Client, who: str, options: MqttOptions) -> None:
        self._who = who
        self._where = options.where
        self._failing = False
        client.on_connect_fail = self._failed

    def _failed(self, _client: paho.Client, _userdata: Any) -> None:
        if not self._failing:
            self._failing = True
            exc = sys.exc_info()[1]
            log.warning("%s cannot connect to %s: %s; retrying", self._who, self._where, exc)

    def connected(self) -> None:
        self._failing = False


class MqttConsumer:
    """Subscribe with a persistent session and manual acks; publish QoS 1."""

    def __init__(
        self,
        options: MqttOptions,
        subscriptions: Sequence[str],
        on_message: Callable[[InboundMessage], None],
    ) -> None:
        self._options = options
        self._subscriptions = list(subscriptions)
        self._on_message = on_message
        # SUBACKs of our subscriptions so far, one per connection: a waiter asks for "more
        # than I saw before", so a flag left over from a dead connection cannot answer it.
        self._subscribed = threading.Condition()
        self._subscribe_rounds = 0
        self._connection = 0
        self._connection_lock = threading.Lock()
        self._pending_sub_mid: int | None = None
        #: Why the broker refused our CONNECT (bad password, not authorised), if it did.
        self._refused: str | None = None
        self._configured = False
        v5 = options.protocol == "5"
        self._client = paho.Client(
            CallbackAPIVersion.VERSION2,
            client_id=options.client_id,
            clean_session=None if v5 else False,
            protocol=MQTTProtocolVersion.MQTTv5 if v5 else MQTTProtocolVersion.MQTTv311,
            manual_ack=True,
        )
        self._client.reconnect_delay_set(1, 30)
        self._client.on_connect = self._handle_connect
        self._client.on_subscribe = self._handle_subscribe
        self._client.on_message = self._handle_message
        self._client.on_disconnect = self._handle_disconnect
        self._failures = _ConnectFailures(self._client, "MQTT consumer", options)

    # -- lifecycle ---------------------------------------------------------------
    def start(self, timeout_s: float = 10.0) -> None:
        """Connect, start paho's network thread and wait until subscribed; raise
        :class:`MqttError` at once when the broker or its certificate is refused."""
        opts = self._options
        props: Properties | None = None
        if opts.protocol == "5":
            props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
            props.SessionExpiryInterval = opts.session_expiry_s
            props.ReceiveMaximum = opts.receive_maximum
        if not self._configured:
            _configure(self._client, opts)
            self._configured = True
        try:
            if opts.protocol == "5":
                self._client.connect(
                    opts.host, opts.port, opts.keepalive_s, clean_start=False, properties=props
                )
            else:
                self._client.connect(opts.host, opts.port, opts.keepalive_s)
        except OSError as exc:
            raise MqttError(f"cannot connect to {opts.where}: {exc}") from exc
        self._client.loop_start()
        with self._subscribed:
            self._subscribed.wait_for(
                lambda: self._subscribe_rounds > 0 or self._refused is not None, timeout_s
            )
            refused, rounds = self._refused, self._subscribe_rounds
        if rounds == 0:
            self.stop()
            if refused is not None:
                raise MqttError(f"{opts.where} refused the connection: {refused}")
            raise MqttError(f"not subscribed within {timeout_s}s to {self._subscriptions}")

    def stop(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()

    @property
    def connected(self) -> bool:
        return self._client.is_connected()

    @property
    def subscribe_rounds(self) -> int:
        """How many times our subscriptions were acknowledged (once per connection)."""
        with self._subscribed:
            return self._subscribe_rounds

    def wait_subscribed(self, after: int, timeout_s: float) -> bool:
        """Wait until the subscriptions are acknowledged on a connection newer than the
        one ``after`` (a :attr:`subscribe_rounds` value) counted; False on timeout."""
        with self._subscribed:
            return self._subscribed.wait_for(lambda: self._subscribe_rounds > after, timeout_s)

    # -- calls from any thread ---------------------------------------------------
    def ack(self, message: InboundMessage) -> bool:
        """Acknowledge one delivered message (after its data is committed).

        Skipped (False) when the connection that delivered it is gone: the packet id may
        name another message on the new connection, and the broker redelivers this one.
        """
        with self._connection_lock:
            if message.connection != self._connection:
                return False
            rc = self._client.ack(message.mid, message.qos)
        if rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
            log.warning("ack of mid %s failed: %s", message.mid, paho.error_string(rc))
            return False
        return True

    def publish(self, topic: str, payload: bytes, *, qos: int = 1, retain: bool = False) -> bool:
        """Queue one publish; False when paho refused it (queue full, not connected)."""
        info = self._client.publish(topic, payload, qos=qos, retain=retain)
        if info.rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
            log.warning("publish to %s refused: %s", topic, paho.error_string(info.rc))
            return False
        return True

    # -- paho callbacks (network thread) -----------------------------------------
    def _handle_connect(
        self, client: paho.Client, _userdata: Any, flags: Any, reason: Any, _props: Any
    ) -> None:
        if reason.is_failure:
            log.error("MQTT connect to %s refused: %s", self._options.where, reason)
            with self._subscribed:
                self._refused = str(reason)
                self._subscribed.notify_all()
            return
        self._failures.connected()
        self._next_connection()
        log.info(
            "MQTT connected to %s (session present: %s)",
            self._options.where,
            flags.session_present,
        )
        # Subscribing again on a present session is harmless and covers a lost one. It is
        # needed, not only prudent: Mosquitto (2.0) restores a persistent session's plain
        # subscriptions after a broker restart but not its shared ones, so a message
        # published between the restart and this SUBSCRIBE reaches no one in the share
        # group and is dropped (the gateway resends it: docs/ARCHITECTURE.md, decision 6).
        result, mid = client.subscribe([(s, 1) for s in self._subscriptions])
        if result != MQTTErrorCode.MQTT_ERR_SUCCESS:
            log.error("subscribe failed: %s", paho.error_string(result))
            return
        self._pending_sub_mid = mid

    def _handle_subscribe(
        self, _client: paho.Client, _userdata: Any, mid: int, reasons: list[Any], _props: Any
    ) -> None:
        failed = [r for r in reasons if r.is_failure]
        if failed:
            log.error("subscription refused: %s", failed)
            return
        if mid == self._pending_sub_mid:
            with self._subscribed:
                self._subscribe_rounds += 1
                self._subscribed.notify_all()

    def _handle_disconnect(
        self, _client: paho.Client, _userdata: Any, _flags: Any, reason: Any, _props: Any
    ) -> None:
        self._next_connection()
        log.warning("MQTT disconnected: %s", reason)

    def _next_connection(self) -> None:
        with self._connection_lock:
            self._connection += 1

    def _handle_message(self, _client: paho.Client, _userdata: Any, msg: paho.MQTTMessage) -> None:
        self._on_message(
            InboundMessage(
                topic=msg.topic,
                payload=bytes(msg.payload),
                mid=msg.mid,
                qos=msg.qos,
                received_at=utc_now(),
                connection=self._connection,
                dup=bool(msg.dup),
            )
        )


class MqttPublisher:
    """A clean-session client that only publishes, each QoS 1 publish confirmed (PUBACK).

    Connects in the background and reconnects by itself, so a broker that is away at
    start is not an error: :meth:`publish` answers False until it is back, and the
    caller (which keeps what it publishes in its database) tries again later.
    """

    def __init__(self, options: MqttOptions, *, publish_timeout_s: float = 5.0) -> None:
        self._options = options
        self._publish_timeout_s = publish_timeout_s
        self._connected = threading.Event()
        v5 = options.protocol == "5"
        self._client = paho.Client(
            CallbackAPIVersion.VERSION2,
            client_id=options.client_id,
            clean_session=None if v5 else True,
            protocol=MQTTProtocolVersion.MQTTv5 if v5 else MQTTProtocolVersion.MQTTv311,
        )
        self._client.reconnect_delay_set(1, 30)
        self._client.on_connect = self._handle_connect
        self._client.on_disconnect = self._handle_disconnect
        self._failures = _ConnectFailures(self._client, "MQTT publisher", options)
        self._configured = False

    def start(self, timeout_s: float = 5.0) -> bool:
        """Start connecting; True when connected within ``timeout_s`` (else it keeps trying)."""
        opts = self._options
        if not self._configured:
            _configure(self._client, opts)
            self._configured = True
        if opts.protocol == "5":
            self._client.connect_async(opts.host, opts.port, opts.keepalive_s, clean_start=True)
        else:
            self._client.connect_async(opts.host, opts.port, opts.keepalive_s)
        self._client.loop_start()
        return self._connected.wait(timeout_s)

    def stop(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    def publish(
        self,
        topic: str,
        payload: bytes,
        *,
        qos: int = 1,
        retain: bool = False,
        timeout_s: float | None = None,
    ) -> bool:
        """Publish and wait for the broker's PUBACK; False when not connected, refused or
        not confirmed within ``timeout_s`` (default: the constructor's; it may still
        arrive later: receivers dedupe)."""
        if not self._connected.is_set():
            return False
        info = self._client.publish(topic, payload, qos=qos, retain=retain)
        if info.rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
            log.warning("publish to %s refused: %s", topic, paho.error_string(info.rc))
            return False
        try:
            info.wait_for_publish(timeout_s if timeout_s is not None else self._publish_timeout_s)
        except (RuntimeError, ValueError) as exc:
            log.warning("publish to %s failed: %s", topic, exc)
            return False
        return info.is_published()

    def _handle_connect(
        self, _client: paho.Client, _userdata: Any, _flags: Any, reason: Any, _props: Any
    ) -> None:
        if reason.is_failure:
            log.error("MQTT publisher connect to %s refused: %s", self._options.where, reason)
            return
        self._failures.connected()
        self._connected.set()
        log.info("MQTT publisher %s connected to %s", self._options.client_id, self._options.where)

    def _handle_disconnect(
        self, _client: paho.Client, _userdata: Any, _flags: Any, reason: Any, _props: Any
    ) -> None:
        self._connected.clear()
        log.warning("MQTT publisher disconnected: %s", reason)
