"""The cut-over to the events table keyed by visitor (decision 0040), read from the HCL: the table
deployed before is kept as the legacy events table (a `moved` target, not destroyed), both tiers
read its stream while `drain_legacy_events` is true and not after, and ingest never writes it."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.infra import terraform as tf
from tests.infra.test_iam import classify, policy_grants

LEGACY = tf.SCHEMA["legacy_tables"]["events"]


def moves() -> dict[str, str]:
    return {
        block["from"]: block["to"]
        for doc in tf.parsed_files().values()
        for block in doc.get("moved", [])
    }


def mapping_keys(drain: bool) -> set[str]:
    """The keys of local.aggregator_mappings with var.drain_legacy_events = `drain`."""
    expression = tf.locals_()["aggregator_mappings"]
    sources = 'concat(["events"], var.drain_legacy_events ? ["legacy_events"] : [])'
    assert f"for source in {sources} :" in expression, expression
    assert "for tier, settings in local.aggregator_tiers :" in expression, expression
    assert '"${tier}/${source}" => merge(settings, {tier = tier, source = source})' in expression
    return {
        f"{tier}/{source}"
        for source in ["events"] + (["legacy_events"] if drain else [])
        for tier in tf.SCHEMA["aggregator_tiers"]
    }


def test_the_deployed_events_table_moves_to_the_legacy_table_instead_of_being_replaced() -> None:
    # Given the events table's address before decision 0040 (this["events"], "<name>-events")
    # Then it is moved to the legacy table, which Terraform accepts only if no table of `this`
    # still has that address ("Moved object still exists"): the new table's key is events-v2
    assert moves()['${aws_dynamodb_table.this["events"]}'] == (
        "${aws_dynamodb_table.legacy_events[0]}"
    )
    events = tf.SCHEMA["tables"]["events"]
    assert events["physical_suffix"] != "events"
    assert "events" not in {t.get("physical_suffix", k) for k, t in tf.SCHEMA["tables"].items()}
    # And the legacy table is the old one as it was: same name, key, stream and TTL
    legacy = tf.resource("aws_dynamodb_table.legacy_events")
    assert tf.resource("aws_dynamodb_table.this")["name"] == "${local.name}-${each.key}"
    assert legacy["name"] == "${local.name}-${local.legacy_events.physical_suffix}"
    assert LEGACY["physical_suffix"] == "events"
    scope = {"local": {"legacy_events": LEGACY}}
    assert tf.evaluate(legacy["hash_key"], scope) == "pk" and "range_key" not in legacy
    (attribute,) = tf.dynamic_blocks(legacy).values()
    assert tf.render_dynamic(attribute, "attribute", scope) == [{"name": "pk", "type": "S"}]
    assert legacy["stream_enabled"] is True
    assert tf.evaluate(legacy["stream_view_type"], scope) == "NEW_IMAGE"
    assert tf.evaluate(legacy["ttl"][0]["attribute_name"], scope) == "ttl"
    assert legacy["ttl"][0]["enabled"] is True
    assert tf.locals_()["legacy_events"] == "${local.schema.legacy_tables.events}"


def test_the_new_events_table_is_keyed_by_visitor_and_event_id() -> None:
    events = tf.SCHEMA["tables"]["events"]
    assert (events["hash_key"], events.get("range_key")) == ("pk", "sk")
    assert events["attributes"] == {"pk": "S", "sk": "S"}


@pytest.mark.parametrize("drain", [True, False])
def test_the_legacy_table_and_its_mappings_exist_only_while_it_drains(drain: bool) -> None:
    # Given drain_legacy_events (true by default: an upgrade keeps reading the old stream)
    assert tf.variables()["drain_legacy_events"]["default"] is True
    legacy = tf.resource("aws_dynamodb_table.legacy_events")
    assert legacy["count"] == "${var.drain_legacy_events ? 1 : 0}"
    # When the mappings are expanded, each tier has one on the events stream, and one on the
    # legacy stream only while draining
    keys = mapping_keys(drain)
    tiers = set(tf.SCHEMA["aggregator_tiers"])
    assert {k for k in keys if k.endswith("/events")} == {f"{t}/events" for t in tiers}
    assert {k for k in keys if k.endswith("/legacy_events")} == (
        {f"{t}/legacy_events" for t in tiers} if drain else set()
    )
    # And the legacy stream is the legacy table's (no table, no stream: the for expression is
    # over its instances)
    streams = tf.locals_()["event_stream_arns"]
    assert '{for table in aws_dynamodb_table.legacy_events : "legacy_events" =>' in streams
    # And the mappings deployed before keep their checkpoints on the table they read: moved to
    # the legacy stream's keys (removed with it when not draining)
    for tier in tiers:
        moved = moves()[f'${{aws_lambda_event_source_mapping.aggregator["{tier}"]}}']
        assert moved == f'${{aws_lambda_event_source_mapping.aggregator["{tier}/legacy_events"]}}'
        assert (f"{tier}/legacy_events" in mapping_keys(True)) and tier not in keys


def test_ingest_cannot_write_the_legacy_table_and_the_aggregator_only_reads_its_stream() -> None:
    # Given every policy document's grants (the variables' defaults: draining)
    touching: dict[str, set[tuple[str, str]]] = {}
    for address in tf.blocks("data"):
        if not address.startswith("aws_iam_policy_document."):
            continue
        function = address.split(".", 1)[1]
        if function not in tf.locals_()["policies"]:
            continue
        for action, resource, _ in policy_grants(function):
            if resource.endswith("legacy_events"):
                touching.setdefault(function, set()).add((action, resource))
    # Then only the aggregator (its mappings) reaches the legacy table, and only its stream
    assert set(touching) == {"aggregator"}
    assert {r for _, r in touching["aggregator"]} == {"stream:legacy_events"}
    assert {a for a, _ in touching["aggregator"]} == {
        "dynamodb:DescribeStream",
        "dynamodb:GetRecords",
        "dynamodb:GetShardIterator",
        "dynamodb:ListStreams",
    }
    # And ingest puts events into the new table only
    ingest = {(a, r) for a, r, _ in policy_grants("ingest") if r.startswith("table:events")}
    assert ingest == {("dynamodb:PutItem", "table:events")}
    (store,) = [
        s
        for s in tf.data("aws_iam_policy_document.ingest")["statement"]
        if s["sid"] == "StoreEvents"
    ]
    assert store["resources"] == ["${aws_dynamodb_table.this[local.table_keys.events].arn}"]
    assert classify(store["resources"][0]) == "table:events"
    assert tf.locals_()["table_keys"].startswith("${{for logical, table in local.schema.tables")
    assert "legacy" not in str(_ingest_environment())


def _ingest_environment() -> Any:
    environment = tf.locals_()["functions"]["ingest"]["environment"]
    assert environment["LIVEINSIGHT_EVENTS_TABLE"] == '${local.tables["events"]}'
    assert re.search(r"aws_dynamodb_table\.this\[key\]", tf.locals_()["tables"])
    return environment
