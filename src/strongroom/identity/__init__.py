"""Users, teams, memberships, roles, API tokens, session and execution-role tokens."""
