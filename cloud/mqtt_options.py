"""A cloud process's MQTT settings → the adapter's connection options, in one place.

The ingest worker's consumer and the config service's publisher both connect this
way: TLS as the URL's scheme says, with the settings' CA and client certificate, as the
identity :meth:`~cloud.settings.MqttSettings.mqtt_credentials` resolves, its password
read now (so a worker restarted after a rotation uses the new one).
"""

from __future__ import annotations

from dataclasses import replace

from cloud.adapters.mqtt import MqttOptions
from cloud.settings import MqttSettings

__all__ = ["mqtt_options"]


def mqtt_options(
    settings: MqttSettings,
    client_id: str,
    *,
    session_expiry_s: int | None = None,
    receive_maximum: int | None = None,
) -> MqttOptions:
    """Options for one client of ``settings``' broker; raises
    :class:`~cloud.settings.CredentialsError` when its password cannot be found."""
    endpoint = settings.mqtt
    username, password = settings.mqtt_credentials()
    options = MqttOptions(
        host=endpoint.host,
        port=endpoint.port,
        client_id=client_id,
        protocol=settings.mqtt_protocol,
        username=username,
        password=password,
        keepalive_s=settings.mqtt_keepalive_s,
        tls=endpoint.tls,
        ca_file=_path(settings.mqtt_ca_file),
        cert_file=_path(settings.mqtt_cert_file),
        key_file=_path(settings.mqtt_key_file),
    )
    if session_expiry_s is not None:
        options = replace(options, session_expiry_s=session_expiry_s)
    if receive_maximum is not None:
        options = replace(options, receive_maximum=receive_maximum)
    return options


def _path(path: object | None) -> str | None:
    return None if path is None else str(path)
