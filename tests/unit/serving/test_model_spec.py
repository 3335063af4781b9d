"""``CreateModel`` specs: the workshop's naming and the runtimes."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from strongroom.core.errors import InvalidInput
from strongroom.serving.models import ModelSpec


def test_a_training_jobs_model_is_named_as_the_workshop_names_it() -> None:
    assert ModelSpec(training_job="xgb-train-1").name == "xgb-train-1-model"
    assert ModelSpec(name="champion", training_job="xgb-train-1").name == "champion"


@pytest.mark.parametrize(
    "spec",
    [
        {"model_data": "sr://risk-models/m/model.tar.gz"},  # an archive needs a name
        {"training_job": "j" * 60},  # <job>-model would be over 63 characters
        {"name": "Bad Name", "training_job": "xgb-train-1"},
    ],
)
def test_names_are_checked(spec: dict[str, str]) -> None:
    with pytest.raises((InvalidInput, ValidationError)) as refused:
        ModelSpec.model_validate(spec)
    assert "name" in str(refused.value)


def test_runtimes() -> None:
    assert ModelSpec(training_job="j", runtime="script").runtime == "script"
    with pytest.raises((InvalidInput, ValidationError), match="runtime must be one of xgboost, script"):
        ModelSpec(training_job="j", runtime="pickle")
