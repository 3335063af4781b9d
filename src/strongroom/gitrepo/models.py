"""Git entities."""

from __future__ import annotations

import datetime as dt

from pydantic import BaseModel


class Repository(BaseModel):
    team: str
    name: str
    description: str = ""
    created_by: str
    created_at: dt.datetime
    srn: str
    clone_url: str = ""


class Commit(BaseModel):
    """What the managed code-commit service's GetCommit returns, in our words."""

    repository: str
    sha: str
    tree: str
    parents: list[str]
    author: str
    email: str
    date: dt.datetime
    committer: str
    committer_email: str
    committed_date: dt.datetime
    message: str
