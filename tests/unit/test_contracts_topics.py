import pytest

from contracts.topics import (
    Kind,
    Region,
    TopicError,
    gateway_subscriptions,
    ingest_filter,
    parse_topic,
    topic,
)


def test_topic_round_trips_through_parser() -> None:
    raw = topic("au", "gw-0001", Kind.TELEMETRY)
    assert raw == "potr/v1/au/gw-0001/telemetry"
    parsed = parse_topic(raw)
    assert (parsed.region, parsed.gateway_id, parsed.kind) == (Region.AU, "gw-0001", Kind.TELEMETRY)
    assert str(parsed) == raw


@pytest.mark.parametrize(
    "raw",
    [
        "potr/v1/xx/gw-0001/telemetry",  # unknown region
        "potr/v1/au/gw-0001/nonsense",  # unknown kind
        "potr/v1/au/_tech/telemetry",  # technician namespace is not a gateway
        "potr/v2/au/gw-0001/telemetry",
        "potr/v1/au/GW/telemetry",
        "potr/v1/au/gw-0001/telemetry/extra",
    ],
)
def test_parser_refuses_topics_outside_the_contract(raw: str) -> None:
    with pytest.raises(TopicError):
        parse_topic(raw)


def test_gateway_ids_are_validated_when_building() -> None:
    with pytest.raises(TopicError):
        topic("us", "_bad", Kind.STATE)


def test_ingest_filters_shared_and_plain() -> None:
    assert ingest_filter() == "$share/ingest/potr/v1/+/+/+"
    assert ingest_filter("es", Kind.BIRTH, shared_group=None) == "potr/v1/es/+/birth"


def test_gateway_subscribes_only_to_cloud_to_gateway_kinds() -> None:
    subs = gateway_subscriptions("au", "gw-0001")
    assert sorted(s.rsplit("/", 1)[1] for s in subs) == ["cmd", "config", "stored"]
