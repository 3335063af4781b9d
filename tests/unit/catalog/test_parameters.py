"""Typed product parameters: defaults, allowed values, patterns, numbers, unknown and missing ones."""

from __future__ import annotations

import pytest

from strongroom.catalog.models import ParameterSpec, ProductVersion
from strongroom.core.errors import InvalidInput
from strongroom.notebooks.product import NOTEBOOK

VERSION = ProductVersion(
    name="v1",
    parameters=[
        ParameterSpec(name="TeamName", allowed_pattern="[a-z]+", constraint_description="lowercase letters"),
        ParameterSpec(name="Size", default="small", allowed_values=["small", "large"]),
        ParameterSpec(name="Disk", type="Number", default="5", min_value=1, max_value=10),
    ],
)


def test_defaults_fill_what_is_not_given() -> None:
    assert VERSION.resolve({"TeamName": "risk"}) == {"TeamName": "risk", "Size": "small", "Disk": "5"}


@pytest.mark.parametrize(
    ("given", "field", "words"),
    [
        ({"TeamName": "Risk!"}, "parameters.TeamName", "does not match the pattern [a-z]+ (lowercase letters)"),
        ({"TeamName": "risk", "Size": "huge"}, "parameters.Size", "choose one of small, large"),
        ({"TeamName": "risk", "Disk": "11"}, "parameters.Disk", "at most 10"),
        ({"TeamName": "risk", "Disk": "lots"}, "parameters.Disk", "not a number"),
        ({"TeamName": "risk", "Colour": "red"}, "parameters.Colour", "has no parameter 'Colour'"),
        ({}, "parameters.TeamName", "is required"),
        ({"TeamName": True}, "parameters.TeamName", "string or a number"),
    ],
)
def test_parameter_errors_name_the_parameter_and_say_why(given: dict, field: str, words: str) -> None:
    with pytest.raises(InvalidInput) as error:
        VERSION.resolve(given)
    assert error.value.field == field
    assert words in error.value.detail


def test_updates_keep_previous_values_unless_given() -> None:
    previous = {"TeamName": "risk", "Size": "large", "Disk": "7"}
    assert VERSION.resolve({"Disk": 9}, previous=previous) == {"TeamName": "risk", "Size": "large", "Disk": "9"}


def test_the_notebook_product_offers_sizes_and_names_rules() -> None:
    version = NOTEBOOK.version(None)
    resolved = version.resolve({"TeamName": "risk", "NotebookName": "alice-nb"})
    assert resolved["InstanceSize"] == "small" and resolved["VolumeSizeGiB"] == "5"
    with pytest.raises(InvalidInput, match="choose one of small, medium, large"):
        version.resolve({"TeamName": "risk", "NotebookName": "nb", "InstanceSize": "xlarge"})
    with pytest.raises(InvalidInput) as bad_name:
        version.resolve({"TeamName": "risk", "NotebookName": "Alice's notebook"})
    assert bad_name.value.field == "parameters.NotebookName" and "lowercase" in bad_name.value.detail
    with pytest.raises(InvalidInput, match="no version 'v9'"):
        NOTEBOOK.version("v9")


def test_a_default_that_breaks_its_own_rules_is_a_definition_error() -> None:
    with pytest.raises(InvalidInput):
        ParameterSpec(name="Size", default="medium", allowed_values=["small"])
