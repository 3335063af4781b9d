"""Raw streaming routes of the API: git smart HTTP, the pip index, the notebook proxy (HTTP and
WebSocket). Authenticated by ``strongroom.guard.connection`` and decided by guard tickets like
every other route; they stream bodies instead of parsing them."""
