"""Reading the audit log through the guard: verify, tail, query, export (the log itself is ``strongroom.audit``)."""
