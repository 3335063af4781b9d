"""Resource names and resource names' syntax (``srn:strongroom:<team>:<type>/<name>``)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from strongroom.core.errors import InvalidInput

NAME_PATTERN = re.compile(r"[a-z0-9][a-z0-9-]{0,62}")
NAME_RULE = "1-63 characters: lowercase letters, digits and '-', starting with a letter or digit"


def check_name(value: object, field: str = "name") -> str:
    """Return ``value`` if it is a valid resource name, else raise naming ``field``."""
    if not isinstance(value, str) or not NAME_PATTERN.fullmatch(value):
        raise InvalidInput(f"{field} {value!r} is not a valid name ({NAME_RULE})", field=field)
    return value


@dataclass(frozen=True, slots=True)
class Srn:
    """A Strongroom resource name. ``team`` is empty for platform-wide resources."""

    team: str
    kind: str
    name: str

    def __str__(self) -> str:
        return f"srn:strongroom:{self.team}:{self.kind}/{self.name}"

    @classmethod
    def parse(cls, text: str, field: str = "srn") -> Srn:
        prefix = "srn:strongroom:"
        if not isinstance(text, str) or not text.startswith(prefix):
            raise InvalidInput(f"{text!r} is not a resource name (srn:strongroom:<team>:<type>/<name>)", field=field)
        team, sep, rest = text[len(prefix) :].partition(":")
        kind, slash, name = rest.partition("/")
        if not sep or not slash or not kind or not name:
            raise InvalidInput(f"{text!r} is not a resource name (srn:strongroom:<team>:<type>/<name>)", field=field)
        if team:
            check_name(team, field)
        return cls(team=team, kind=kind, name=name)
