"""The one door: every call is decided, acted on and audited here, and nowhere else.

``Guard.begin`` is the only way to reach a resource: it decides with the policy engine and
returns a ``Ticket``; the holder acts (``ticket.transaction()`` for database work) and the
ticket records exactly one audit outcome (allowed, denied or failed) whatever happens in
between. Nothing outside this package calls the policy engine's ``decide`` or writes an audit
record (``tests/unit/guard/test_one_door.py`` fails if something does).
"""

from strongroom.guard.core import Guard, Ticket

__all__ = ["Guard", "Ticket"]
