"""A field technician's side of a configuration push (``potr tech push``): publish one
request on their own request topic and wait, bounded, for its answer on their reply
topic. Connects as the MOSIE's own broker identity (``_tech/<name>``); the broker lets
that identity publish only on ``potr/v1/<region>/_tech/<name>/config_req`` and read
only ``…/config_resp``."""

from __future__ import annotations

import queue
import secrets
import uuid
from dataclasses import replace
from datetime import datetime

from pydantic import ValidationError

from cloud.adapters.mqtt import InboundMessage, MqttConsumer, MqttOptions
from contracts.identities import IdentityKind, parse_username
from contracts.messages import ConfigReq, ConfigResp, MessageError, decode
from contracts.timeutil import utc_now
from contracts.topics import Kind, Region, tech_topic

__all__ = ["TechPushError", "new_request", "push"]


class TechPushError(RuntimeError):
    """The request could not be sent (not a technician identity, broker refused)."""


def new_request(
    employee_no: str, site_id: int, profile: str, *, now: datetime | None = None
) -> ConfigReq:
    """A request with a fresh id and nonce, stamped ``now``."""
    return ConfigReq(
        id=uuid.uuid4(),
        employee_no=employee_no.strip().upper(),
        site_id=site_id,
        profile=profile,
        ts=now or utc_now(),
        nonce=secrets.token_urlsafe(24),
    )


def push(
    options: MqttOptions, region: Region | str, request: ConfigReq, *, timeout_s: float = 15.0
) -> ConfigResp | None:
    """Send ``request`` as ``options.username`` (a ``_tech/<name>`` identity) in
    ``region`` and return the config service's answer, or None when none came within
    ``timeout_s``."""
    if options.username is None:
        raise TechPushError("a technician push needs the MOSIE's broker identity (_tech/<name>)")
    kind, name = parse_username(options.username)
    if kind is not IdentityKind.TECHNICIAN:
        raise TechPushError(f"{options.username!r} is not a technician's identity (_tech/<name>)")
    answers: queue.Queue[InboundMessage] = queue.Queue()
    consumer = MqttConsumer(
        replace(options, session_expiry_s=0),
        [tech_topic(region, name, Kind.CONFIG_RESP)],
        answers.put,
    )
    try:
        consumer.start(timeout_s)
    except Exception as exc:
        raise TechPushError(str(exc)) from exc
    try:
        if not consumer.publish(tech_topic(region, name, Kind.CONFIG_REQ), request.to_json()):
            raise TechPushError(f"the request could not be queued for {options.where}")
        return _await_answer(consumer, answers, request, timeout_s)
    finally:
        consumer.stop()


def _await_answer(
    consumer: MqttConsumer,
    answers: queue.Queue[InboundMessage],
    request: ConfigReq,
    timeout_s: float,
) -> ConfigResp | None:
    deadline = utc_now().timestamp() + timeout_s
    while (left := deadline - utc_now().timestamp()) > 0:
        try:
            message = answers.get(timeout=left)
        except queue.Empty:
            return None
        consumer.ack(message)
        try:
            answer = decode(Kind.CONFIG_RESP, message.payload)
        except (MessageError, ValidationError):
            continue
        assert isinstance(answer, ConfigResp)
        if answer.id in (request.id, None):
            return answer
    return None
