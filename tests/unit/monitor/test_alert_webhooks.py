"""A team's own alert webhook: who may set it, and which URLs a team may make the platform call."""

from __future__ import annotations

import pytest

from strongroom.alerts.webhooks import check_team_webhook
from strongroom.core.context import Grant
from strongroom.core.errors import Forbidden, InvalidInput, NotFound
from strongroom.platform import Platform
from tests.support import context_for

PUBLIC = {"alerts.example.com": ["8.8.4.4"], "hooks.example.com": ["93.184.216.34", "2606:2800:220:1::1"]}


def _resolve(host: str, port: int) -> list[str]:
    return {**PUBLIC, "internal.example.com": ["10.0.0.5"], "rebind.example.com": ["93.184.216.34", "127.0.0.1"]}[host]


@pytest.mark.parametrize(
    "url",
    [
        "http://hooks.example.com/alerts",  # no TLS
        "https://ops:hunter2@hooks.example.com/alerts",  # credentials in the URL
        "https://hooks.example.com/alerts?token=abc",
        "https://hooks.example.com/alerts?X-Api-Key=abc",
        "https://hooks.example.com/alerts#x",
        "https://127.0.0.1:8443/alerts",  # the platform's own host
        "https://[::1]/alerts",
        "https://169.254.169.254/latest/meta-data/",  # a cloud metadata service
        "https://10.1.2.3/alerts",
        "https://internal.example.com/alerts",  # a name for a private address
        "https://rebind.example.com/alerts",  # one of its addresses is loopback
        "https://hooks.example.com/a b",
        "file:///etc/passwd",
        "https:///alerts",
    ],
)
def test_a_team_webhook_must_be_public_https_without_credentials(url: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        check_team_webhook(url, resolve=_resolve)
    assert refused.value.field == "url"


def test_public_https_webhooks_and_operator_allowed_hosts_are_accepted() -> None:
    assert check_team_webhook("https://hooks.example.com/services/risk?channel=models", resolve=_resolve)
    assert check_team_webhook("https://alerts.example.com:8443/x", resolve=_resolve)
    # an internal relay the operator listed
    url = "https://internal.example.com/alerts"
    assert check_team_webhook(url, ["internal.example.com"], resolve=_resolve) == url


def test_the_team_admin_sets_the_webhook_mlops_reads_it_a_data_scientist_cannot(teams: Platform) -> None:
    p = teams
    admin = context_for("ada", Grant("DataScienceAdmin", "risk"))
    mlops = context_for("mo", Grant("MLOpsEngineer", "risk"))
    scientist = context_for("dana", Grant("DataScientist", "risk"))
    other = context_for("eve", Grant("DataScienceAdmin", "fraud"))
    p.alerts.allowed_hosts = ("localhost",)
    with pytest.raises(NotFound):
        p.alerts.describe_team_webhook(admin, "risk")
    for ctx in (mlops, scientist, other):
        with pytest.raises(Forbidden):
            p.alerts.set_team_webhook(ctx, "risk", "https://localhost:9/alerts")
    with pytest.raises(InvalidInput):
        p.alerts.set_team_webhook(admin, "risk", "https://127.0.0.1:9/alerts")
    set_ = p.alerts.set_team_webhook(admin, "risk", "https://localhost:9/alerts")
    assert (set_.url, set_.updated_by) == ("https://localhost:9/alerts", "ada")
    assert p.alerts.describe_team_webhook(mlops, "risk").url == "https://localhost:9/alerts"
    with pytest.raises(Forbidden):
        p.alerts.describe_team_webhook(scientist, "risk")
    p.alerts.delete_team_webhook(admin, "risk")
    with pytest.raises(NotFound):
        p.alerts.describe_team_webhook(mlops, "risk")
