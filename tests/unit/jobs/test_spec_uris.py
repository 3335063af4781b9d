"""Every sr:// URI a request carries is checked at submission with the object-put key rules:
job specs here, experiment artifacts below, lineage artifacts in tests/unit/lineage."""

from __future__ import annotations

from typing import Any

import pytest

from strongroom.core.errors import InvalidInput
from strongroom.experiments.models import ArtifactValue
from strongroom.jobs.models import JobSpec
from strongroom.storage.keys import parse_uri

HOSTILE_KEYS = ["#/../../x", "?x=../..", "a/../../b", "a//b", "./a", "a\\..\\b", "a/\u202eb", "a/\x00b"]


def _spec(**overrides: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "name": "uri-check",
        "team": "risk",
        "kind": "processing",
        "code": {"source": "sr://risk-code/jobs/prep.py"},
        "inputs": [{"name": "raw", "source": "sr://risk-data/raw/credit.csv"}],
        "outputs": [{"name": "clean", "destination": "sr://risk-data/clean/"}],
        "security": {"network_isolation": True, "volume_kms_key": "risk-key"},
    }
    spec.update(overrides)
    return spec


def test_a_good_spec_with_every_uri_is_accepted() -> None:
    spec = JobSpec.model_validate(_spec(spot={"use_spot": True, "checkpoint_uri": "sr://risk-data/ckpt/run 1#2?/"}))
    assert spec.spot.checkpoint_uri == "sr://risk-data/ckpt/run 1#2?/"  # '#' and '?' are key characters


@pytest.mark.parametrize("key", HOSTILE_KEYS)
@pytest.mark.parametrize(
    ("where", "field"),
    [
        (lambda uri: {"code": {"source": uri}}, "code.source"),
        (lambda uri: {"inputs": [{"name": "raw", "source": uri}]}, "inputs.source"),
        (lambda uri: {"outputs": [{"name": "clean", "destination": uri}]}, "outputs.destination"),
        (lambda uri: {"spot": {"use_spot": True, "checkpoint_uri": uri}}, "spot.checkpoint_uri"),
    ],
    ids=["code", "input", "output", "checkpoint"],
)
def test_hostile_keys_are_refused_at_submission_naming_the_field(key: str, where: Any, field: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        JobSpec.model_validate(_spec(**where(f"sr://risk-data/{key}")))
    assert refused.value.field == field
    assert refused.value.status == 422


@pytest.mark.parametrize("key", HOSTILE_KEYS)
def test_parse_uri_applies_the_object_put_rules(key: str) -> None:
    with pytest.raises(InvalidInput, match="sr://risk-data/") as refused:
        parse_uri(f"sr://risk-data/{key}", "outputs[0].destination")
    assert refused.value.field == "outputs[0].destination"
    assert parse_uri("sr://risk-data") == ("risk-data", "")
    assert parse_uri("sr://risk-data/raw/") == ("risk-data", "raw/")


@pytest.mark.parametrize("key", HOSTILE_KEYS)
def test_experiment_artifact_uris_follow_the_same_rules(key: str) -> None:
    assert ArtifactValue(value="sr://risk-data/raw/credit.csv").value == "sr://risk-data/raw/credit.csv"
    assert ArtifactValue(value="git+https://git.example/risk.git@0123").value.startswith("git+")  # not ours
    with pytest.raises(InvalidInput) as refused:
        ArtifactValue(value=f"sr://risk-data/{key}")
    assert refused.value.field == "value"
