"""Experiment and lineage pages: the workshop's tuning runs listed, charted and compared, the lineage
graph drawn from a dataset down to the commit; hostile names render literally; an Auditor reads
every team, a DataScientist only hers, and another team's request is refused by the guard."""

from __future__ import annotations

import html
import itertools
import re
import urllib.parse
from collections.abc import Callable

import pytest

from strongroom.audit.log import AuditFilter
from strongroom.core.context import Grant
from strongroom.experiments.models import ArtifactValue, ComponentCreate, ComponentUpdate
from strongroom.lineage.models import GitCommit
from strongroom.platform import Platform
from tests.integration.console.conftest import ADMIN, Browser, audited_actions, signed_in
from tests.support import context_for

pytestmark = pytest.mark.timeout(300)

ALICE = context_for("alice", Grant("DataScientist", "risk"))
HOSTILE = "<script>alert(1)</script>{{7*7}}"
COMMIT = "0f3c2b1a9e8d7c6b5a4f3e2d1c0b9a8f7e6d5c4b"


def _hrefs(page: str, pattern: str) -> list[str]:
    return [html.unescape(h) for h in re.findall(rf'href="({pattern}[^"]*)"', page)]


def _tuning(platform: Platform) -> None:
    """The workshop's tuning: two XGBoost trials on the credit data, the second deeper, from one commit."""
    xp = platform.experiments
    xp.create_experiment(ALICE, "risk", "credit-default", display_name=HOSTILE, description="XGBoost {{7*7}}")
    commit = GitCommit(repository="https://git.bank.example/risk/credit.git", commit=COMMIT, message=HOSTILE)
    train = ArtifactValue(value="sr://risk-data/train/credit.csv", version_id="v3", sha256="ab" * 32)
    hostile = ArtifactValue(value=f"sr://risk-data/{HOSTILE}.csv", version_id="v1")
    for depth, trial in ((3, "xgb-depth-3"), (5, "xgb-depth-5")):
        xp.create_trial(ALICE, "risk", trial, "credit-default")
        xp.create_trial_component(
            ALICE,
            "risk",
            f"{trial}-training",
            parameters={"max_depth": depth, "eta": 0.2, "objective": "binary:logistic", HOSTILE: "{{7*7}}"},
            inputs={"train": train, HOSTILE: hostile},
            trial=trial,
            commit=commit,
        )
        auc = [0.70 + 0.01 * step * depth / 5 for step in range(20)]
        xp.update_trial_component(
            ALICE,
            "risk",
            ComponentUpdate.model_validate(
                {
                    "name": f"{trial}-training",
                    "status": "Completed",
                    "outputs": {"model": {"value": f"sr://risk-data/models/{trial}/model.tar.gz", "version_id": "v1"}},
                    "metrics": [{"name": "validation:auc", "value": v, "step": i} for i, v in enumerate(auc)]
                    + [{"name": "train:logloss", "value": 0.5, "step": 0}, {"name": HOSTILE, "value": 1.0}],
                }
            ),
        )


def test_experiments_trials_and_a_component_with_charts_render_hostile_names_literally(
    console_platform: Platform, new_browser: Callable[[], Browser]
) -> None:
    _tuning(console_platform)
    alice = signed_in(console_platform, new_browser, "alice")

    listing = alice.get("/console/experiments")
    assert listing.status_code == 200 and "page 1 of 1 (1 in all)" in listing.text
    assert "<script>alert" not in listing.text and "&lt;script&gt;alert(1)&lt;/script&gt;{{7*7}}" in listing.text
    experiment = alice.get(_hrefs(listing.text, "/console/experiments/risk/")[0])
    assert experiment.status_code == 200 and "XGBoost {{7*7}}" in experiment.text
    trials = _hrefs(experiment.text, "/console/trials/")
    assert trials == ["/console/trials/risk/xgb-depth-5", "/console/trials/risk/xgb-depth-3"]

    trial = alice.get("/console/trials/risk/xgb-depth-5")
    assert trial.status_code == 200 and 'aria-label="Compare xgb-depth-5-training"' in trial.text
    assert "validation:auc 0.89" in trial.text  # the final value, 4 significant digits

    page = alice.get("/console/trial-components/risk/xgb-depth-5-training")
    assert page.status_code == 200 and "<script>alert" not in page.text
    assert "<td>&lt;script&gt;alert(1)&lt;/script&gt;{{7*7}}</td><td>{{7*7}}</td>" in page.text
    assert "<td>max_depth</td><td>5</td>" in page.text
    charts = re.findall(r'<svg role="img" aria-labelledby="([\w-]+)-title [\w-]+-desc"', page.text)
    assert len(charts) == 3  # one per metric, each named by its title and described in words
    auc = re.search(r"<desc id=\"chart-\d+-desc\">(validation:auc over step[^<]+)</desc>", page.text)
    assert auc is not None and "20 values from 0.7 to 0.89" in auc.group(1)
    lines = re.findall(r'<polyline class="series series-0" points="([^"]+)"', page.text)
    assert sorted(len(points.split()) for points in lines) == [1, 1, 20]
    lineage = _hrefs(page.text, "/console/lineage/graph")
    srn = "srn:strongroom:risk:trial-component/xgb-depth-5-training"
    assert lineage[0] == "/console/lineage/graph?" + urllib.parse.urlencode({"srn": srn, "direction": "both"})
    assert audited_actions(console_platform, page.headers["x-request-id"]) == [("ViewConsolePage", "Allow")]
    checks = console_platform.audit_log.query(AuditFilter(request_id=page.headers["x-request-id"], limit=1))[0]
    actions = [c["action"] for c in checks.params["checks"]]
    assert actions == ["DescribeTrialComponent", "SearchTrialComponents"]  # itself, then its 3 series in one read


def test_the_compare_marks_differing_values_and_charts_each_metric_for_both(
    console_platform: Platform, new_browser: Callable[[], Browser]
) -> None:
    _tuning(console_platform)
    alice = signed_in(console_platform, new_browser, "alice")
    page = alice.get("/console/compare/risk?c=xgb-depth-3-training&c=xgb-depth-5-training")
    assert page.status_code == 200
    differs = '<th scope="row">max_depth <span class="mark">differs</span></th><td>3</td><td>5</td></tr>'
    assert '<tr class="differs">' + differs in page.text
    assert '<tr><th scope="row">objective</th><td>binary:logistic</td><td>binary:logistic</td></tr>' in page.text
    assert 'class="differs"><th scope="row">validation:auc' in page.text
    assert 'class="differs"><th scope="row">train:logloss' not in page.text
    assert page.text.count('<polyline class="series series-1"') == 3  # both components on each metric chart
    assert "<script>alert" not in page.text

    console_platform.experiments.create_trial(ALICE, "risk", "sweep", "credit-default")
    sweep = [ComponentCreate(name=f"sweep-{i:02d}", trial="sweep", parameters={"max_depth": i}) for i in range(30)]
    console_platform.experiments.batch_update(ALICE, "risk", creates=sweep)
    first = alice.get("/console/trials/risk/sweep")
    assert first.text.count('type="checkbox"') == 25 and "sweep-24" in first.text and 'rel="next"' in first.text
    second = alice.get("/console/trials/risk/sweep?page=2")
    assert second.text.count('type="checkbox"') == 5 and "sweep-29" in second.text and 'rel="next"' not in second.text

    one = alice.get("/console/compare/risk?c=xgb-depth-3-training")
    assert one.status_code == 422 and "choose from 2 to 8" in one.text


def test_the_lineage_graph_is_drawn_from_a_dataset_down_to_the_commit_with_every_node_a_link(
    console_platform: Platform, new_browser: Callable[[], Browser]
) -> None:
    _tuning(console_platform)
    alice = signed_in(console_platform, new_browser, "alice")
    entities = alice.get("/console/lineage?kind=artifact&type=DataSet")
    assert entities.status_code == 200 and "sr://risk-data/train/credit.csv" in entities.text
    assert "<script>alert" not in entities.text
    assert "sr://risk-data/&lt;script&gt;alert(1)&lt;/script&gt;{{7*7}}.csv" in entities.text
    dataset = _hrefs(entities.text, "/console/lineage/graph")
    assert len(dataset) == 2

    graph = alice.get(dataset[0])  # listed oldest first: the train set, the first input
    assert graph.status_code == 200
    boxes = re.findall(r'<a href="(/console/lineage/graph\?[^"]+)" aria-label="(\w+) ([^"]+)"', graph.text)
    assert sorted(kind for _, kind, _ in boxes) == ["DataSet", "Model", "Model", "Tracker", "Tracker"]
    assert 'aria-label="DataSet train (this entity)" aria-current="page"' in graph.text
    assert graph.text.count('<path class="edge') == 4  # read by both trials, each produced a model

    # a click on one trial's run: its inputs, its commit upstream, its model downstream
    run = next(html.unescape(href) for href, kind, name in boxes if name == "xgb-depth-5-training")
    around = alice.get(run)
    nodes = re.findall(r'<a href="(/console/lineage/graph\?[^"]+)" aria-label="(\w+) ([^"]+)"', around.text)
    by_type = {kind: html.unescape(href) for href, kind, _ in nodes}
    assert sorted(by_type) == ["Commit", "DataSet", "Model", "Tracker"]
    assert "<script>alert" not in around.text
    assert 'aria-label="DataSet &lt;script&gt;alert(1)&lt;/script&gt;{{7*7}}"' in around.text
    commit = alice.get(by_type["Commit"])
    assert commit.status_code == 200 and "Lineage of Commit 0f3c2b1a9e8d" in commit.text
    assert COMMIT in commit.text and "&lt;script&gt;alert(1)&lt;/script&gt;{{7*7}}" in commit.text
    assert "<script>alert" not in commit.text
    assert "AssociatedWith" in commit.text

    refused = alice.get("/console/lineage/graph?srn=srn:strongroom:risk:artifact/nope&depth=99")
    assert refused.status_code == 422 and "depth" in refused.text


def test_a_deep_or_wide_graph_is_cut_with_a_note(
    console_platform: Platform, new_browser: Callable[[], Browser]
) -> None:
    lineage = console_platform.lineage
    chain = [
        lineage.record_artifact(ALICE, "risk", f"sr://risk-data/stage-{i}.csv", "DataSet", version_id="v1").srn
        for i in range(5)
    ]
    for a, b in itertools.pairwise(chain):
        lineage.associate(ALICE, "risk", a, b, "DerivedFrom")
    wide = {
        f"part-{i:03d}": ArtifactValue(value=f"sr://risk-data/parts/{i:03d}.csv", version_id="v1") for i in range(70)
    }
    console_platform.experiments.create_trial_component(ALICE, "risk", "merge-parts", inputs=wide)
    alice = signed_in(console_platform, new_browser, "alice")

    q = urllib.parse.quote(chain[0])
    deep = alice.get(f"/console/lineage/graph?srn={q}&direction=downstream&depth=2")
    assert deep.status_code == 200 and "Limited to 2 steps: more entities lie further downstream" in deep.text
    assert deep.text.count("<rect class=") == 3 and "Draw 3 steps" in deep.text
    whole = alice.get(f"/console/lineage/graph?srn={q}&direction=downstream&depth=4")
    assert whole.text.count("<rect class=") == 5 and "Limited to" not in whole.text

    listed = alice.get("/console/lineage?kind=artifact")
    assert listed.text.count("<tr><td>artifact</td>") == 25 and 'rel="next"' in listed.text
    last = alice.get(_hrefs(listed.text, "/console/lineage\\?page=2")[0].replace("page=2", "page=3"))
    assert last.text.count("<tr><td>artifact</td>") == 25 and 'rel="next"' not in last.text  # 75 in all

    q = urllib.parse.quote("srn:strongroom:risk:trial-component/merge-parts")
    star = alice.get(f"/console/lineage/graph?srn={q}&direction=upstream&depth=1")
    assert star.text.count("<rect class=") == 60
    assert "Only the 60 nearest entities are drawn; 11 more within 1 steps are left out" in star.text


def test_an_auditor_reads_every_team_a_data_scientist_only_hers_and_another_team_is_refused(
    console_platform: Platform, new_browser: Callable[[], Browser]
) -> None:
    _tuning(console_platform)
    console_platform.identity.create_team(ADMIN, "fraud")
    console_platform.identity.create_user(ADMIN, "bob")
    console_platform.identity.add_member(ADMIN, "fraud", "bob", "DataScientist")
    graph = "/console/lineage/graph?" + urllib.parse.urlencode(
        {"srn": "srn:strongroom:risk:trial-component/xgb-depth-5-training"}
    )

    ava = signed_in(console_platform, new_browser, "ava")
    assert "credit-default" in ava.get("/console/experiments").text
    assert ava.get("/console/compare/risk?c=xgb-depth-3-training&c=xgb-depth-5-training").status_code == 200
    assert ava.get(graph).status_code == 200
    assert "sr://risk-data/train/credit.csv" in ava.get("/console/lineage?team=risk").text

    bob = signed_in(console_platform, new_browser, "bob")
    assert "credit-default" not in bob.get("/console/experiments").text
    assert "No experiment." in bob.get("/console/experiments").text
    for path in (
        "/console/experiments/risk/credit-default",
        "/console/trials/risk/xgb-depth-5",
        "/console/trial-components/risk/xgb-depth-5-training",
        "/console/compare/risk?c=xgb-depth-3-training&c=xgb-depth-5-training",
        graph,
        "/console/lineage?team=risk",
    ):
        refused = bob.get(path)
        assert refused.status_code == 403, path
        assert audited_actions(console_platform, refused.headers["x-request-id"]) == [("ViewConsolePage", "Deny")], path
    assert bob.get("/console/lineage").status_code == 200  # his own team's (empty) graph


def test_a_job_page_links_its_trial_component_which_links_back(
    console_platform: Platform, new_browser: Callable[[], Browser]
) -> None:
    from strongroom.jobs.models import JobSpec

    dsa = context_for("dora", Grant("DataScienceAdmin", "risk"))
    console_platform.kms.create_key(dsa, "risk", "risk-key", "risk jobs key")
    console_platform.storage.create_bucket(dsa, "risk", "risk-data", key="risk-key")
    script = console_platform.storage.put_object(ALICE, "risk-data", "code/train.py", [b"print('trained')\n"])
    console_platform.experiments.create_experiment(ALICE, "risk", "credit-default")
    console_platform.experiments.create_trial(ALICE, "risk", "xgb-depth-5", "credit-default")
    spec = JobSpec.model_validate(
        {
            "name": "train-credit",
            "team": "risk",
            "kind": "training",
            "code": {"source": script.uri},
            "hyperparameters": {"max_depth": 5, "eta": 0.2},
            "outputs": [{"name": "model", "destination": "sr://risk-data/models/"}],
            "experiment_config": {"experiment_name": "credit-default", "trial_name": "xgb-depth-5"},
            "security": {"network_isolation": True, "volume_kms_key": "risk-key"},
            "resources": {"scratch_mb": 256, "max_runtime_seconds": 300},
        }
    )
    console_platform.jobs.create_job(ALICE, spec)
    alice = signed_in(console_platform, new_browser, "alice")

    job = alice.get("/console/jobs/risk/train-credit")
    links = _hrefs(job.text, "/console/trial-components/")
    assert links == ["/console/trial-components/risk/train-credit-trainingjob"]
    assert "Lineage of train-credit" not in job.text  # recorded when the run ends
    component = alice.get(links[0])
    assert component.status_code == 200 and "<td>max_depth</td><td>5</td>" in component.text
    assert "/console/jobs/risk/train-credit" in _hrefs(component.text, "/console/jobs/")
    assert _hrefs(component.text, "/console/lineage/") == []  # the job's run is recorded when it ends
    console_platform.experiments.finish_job_component(ALICE, "risk", "train-credit-trainingjob", status="Failed")
    lineage = "/console/lineage/graph?srn=srn%3Astrongroom%3Arisk%3Ajob%2Ftrain-credit&direction=both"
    assert _hrefs(alice.get(links[0]).text, "/console/lineage/") == [lineage]


def test_an_object_version_a_run_read_links_to_its_lineage(
    console_platform: Platform, new_browser: Callable[[], Browser]
) -> None:
    dsa = context_for("dora", Grant("DataScienceAdmin", "risk"))
    console_platform.kms.create_key(ADMIN, "risk", "default", "risk data key")
    console_platform.storage.create_bucket(dsa, "risk", "risk-data")
    rows = b"20000,2,2,1,24,2,2,-1,-1,-2,-2,3913,3102,689,0,0,0,0,689,0,0,0,0,1\n"
    read = console_platform.storage.put_object(ALICE, "risk-data", "train/credit.csv", [rows])
    unread = console_platform.storage.put_object(ALICE, "risk-data", "train/credit.csv", [rows * 2])
    train = ArtifactValue(value=read.uri, version_id=read.version_id, sha256=read.sha256)
    console_platform.experiments.create_trial_component(ALICE, "risk", "prep-credit", inputs={"train": train})
    alice = signed_in(console_platform, new_browser, "alice")

    page = alice.get("/console/data/risk-data/versions", params={"key": "train/credit.csv"})
    assert page.status_code == 200 and page.text.count("Download version") == 2
    assert f"Lineage of version {read.version_id[:8]}" in page.text
    assert f"Lineage of version {unread.version_id[:8]}" not in page.text
    (link,) = _hrefs(page.text, "/console/lineage/graph")
    graph = alice.get(link)
    assert graph.status_code == 200 and 'aria-label="Tracker prep-credit"' in graph.text
