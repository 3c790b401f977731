"""Typed settings, read from LIVEINSIGHT_* variables in one place and validated at cold start."""

from __future__ import annotations

import dataclasses

import pytest

from core.settings import (
    AggregatorSettings,
    IngestSettings,
    QuerySettings,
    SettingsError,
    load,
)


@dataclasses.dataclass(frozen=True)
class Example:
    table: str
    limit: int = 10
    verbose: bool = False


@dataclasses.dataclass(frozen=True)
class WithFactory:
    table: str
    tags: list[str] = dataclasses.field(default_factory=list)


def test_required_settings_are_read_and_defaults_fill_the_rest() -> None:
    settings = load(
        IngestSettings,
        {"LIVEINSIGHT_EVENTS_TABLE": "events", "LIVEINSIGHT_META_TABLE": "meta"},
    )

    assert settings == IngestSettings(
        events_table="events",
        meta_table="meta",
        max_body_bytes=64 * 1024,
        max_batch_events=50,
        trust_forwarded_for=False,
    )


def test_every_lambda_settings_class_loads_from_a_full_environment() -> None:
    env = {
        "LIVEINSIGHT_EVENTS_TABLE": "events",
        "LIVEINSIGHT_META_TABLE": "meta",
        "LIVEINSIGHT_AGGREGATES_TABLE": "aggregates",
        "LIVEINSIGHT_MAX_TRANSACTION_ITEMS": "50",
    }

    assert load(IngestSettings, env).events_table == "events"
    assert load(AggregatorSettings, env).max_transaction_items == 50
    assert load(QuerySettings, env) == QuerySettings(
        aggregates_table="aggregates", meta_table="meta"
    )


def test_missing_required_setting_names_the_variable() -> None:
    with pytest.raises(SettingsError, match="LIVEINSIGHT_META_TABLE is required"):
        load(IngestSettings, {"LIVEINSIGHT_EVENTS_TABLE": "events"})


def test_unrelated_and_unprefixed_variables_are_ignored() -> None:
    settings = load(Example, {"LIVEINSIGHT_TABLE": "t", "TABLE": "x", "LIVEINSIGHT_OTHER": "1"})

    assert settings == Example(table="t")


@pytest.mark.parametrize(("raw", "value"), [("0", 0), ("128", 128), ("-3", -3), (" 7 ", 7)])
def test_int_setting_is_coerced(raw: str, value: int) -> None:
    assert load(Example, {"LIVEINSIGHT_TABLE": "t", "LIVEINSIGHT_LIMIT": raw}).limit == value


@pytest.mark.parametrize("raw", ["lots", "", "1.5", "0x10"])
def test_int_setting_that_is_not_an_integer_is_an_error(raw: str) -> None:
    with pytest.raises(SettingsError, match="LIVEINSIGHT_LIMIT must be int"):
        load(Example, {"LIVEINSIGHT_TABLE": "t", "LIVEINSIGHT_LIMIT": raw})


@pytest.mark.parametrize(
    ("raw", "value"),
    [
        ("1", True),
        ("true", True),
        ("TRUE", True),
        ("yes", True),
        ("on", True),
        ("0", False),
        ("false", False),
        ("False", False),
        ("no", False),
        ("off", False),
        ("", False),
    ],
)
def test_bool_setting_accepts_the_usual_spellings(raw: str, value: bool) -> None:
    assert load(Example, {"LIVEINSIGHT_TABLE": "t", "LIVEINSIGHT_VERBOSE": raw}).verbose is value


@pytest.mark.parametrize("raw", ["maybe", "2", "y"])
def test_bool_setting_with_another_value_is_an_error(raw: str) -> None:
    with pytest.raises(SettingsError, match="LIVEINSIGHT_VERBOSE must be a boolean"):
        load(Example, {"LIVEINSIGHT_TABLE": "t", "LIVEINSIGHT_VERBOSE": raw})


def test_field_with_a_default_factory_is_optional() -> None:
    assert load(WithFactory, {"LIVEINSIGHT_TABLE": "t"}) == WithFactory(table="t", tags=[])


def test_without_an_explicit_mapping_the_process_environment_is_read(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("LIVEINSIGHT_AGGREGATES_TABLE", "from-env")
    monkeypatch.setenv("LIVEINSIGHT_MAX_TRANSACTION_ATTEMPTS", "9")

    settings = load(AggregatorSettings)

    assert (settings.aggregates_table, settings.max_transaction_attempts) == ("from-env", 9)
