"""Experiments service: components, batched metrics and summaries, analytics, access."""

from __future__ import annotations

import statistics
import time

import pytest

from strongroom.core.context import RequestContext
from strongroom.core.errors import Conflict, Forbidden, InvalidInput, NotFound
from strongroom.experiments.analytics import SearchRequest
from strongroom.experiments.models import ComponentCreate, ComponentUpdate, ExperimentConfig, MetricColumns
from strongroom.platform import Platform

TEAM = "risk"


def _workshop(p: Platform, ctx: RequestContext) -> None:
    """The workshop's experiment: preprocessing and training in one trial, a second trial apart."""
    svc = p.experiments
    svc.create_experiment(ctx, TEAM, "credit-default", description="ccd")
    svc.create_trial(ctx, TEAM, "xgboost-1", "credit-default")
    svc.create_trial(ctx, TEAM, "xgboost-2", "credit-default")
    svc.create_trial_component(
        ctx,
        TEAM,
        "preprocessing",
        display_name="Preprocessing",
        parameters={"train_test_split_ratio": 0.2, "scaler": "standard"},
        inputs={"raw": {"value": "sr://risk-data/raw.csv", "media_type": "text/csv"}},
        trial="xgboost-1",
    )
    svc.create_trial_component(
        ctx,
        TEAM,
        "training",
        display_name="Training",
        source="srn:strongroom:risk:training-job/train-1",
        source_type="TrainingJob",
        parameters={"max_depth": 5, "eta": 0.2, "objective": "binary:logistic"},
        trial="xgboost-1",
    )
    svc.create_trial_component(ctx, TEAM, "other", parameters={"max_depth": 9}, trial="xgboost-2")
    svc.batch_update(
        ctx,
        TEAM,
        [ComponentUpdate(name="training", status="Completed", outputs={"model": {"value": "sr://risk-data/m.tgz"}})],
        [
            MetricColumns(
                component="training",
                names=["validation:auc"] * 4 + ["train:auc"],
                values=[0.70, 0.75, 0.78, 0.77, 0.81],
                steps=[0, 1, 2, 3, 3],
                timestamps=[time.time()] * 5,
            ),
            MetricColumns(
                component="other", names=["validation:auc"], values=[0.6], steps=[0], timestamps=[time.time()]
            ),
        ],
    )


def test_metric_summaries_match_the_series_across_batches(teams: Platform, alice: RequestContext) -> None:
    svc = teams.experiments
    svc.create_trial_component(alice, TEAM, "c")
    values = [0.3, 0.9, 0.1, 0.5, 0.7, 0.2, 0.8]
    for chunk in (values[:3], values[3:4], values[4:]):
        svc.batch_update(
            alice,
            TEAM,
            metric_columns=[
                MetricColumns(
                    component="c",
                    names=["loss"] * len(chunk),
                    values=chunk,
                    steps=[None] * len(chunk),
                    timestamps=[time.time()] * len(chunk),
                )
            ],
        )
    [summary] = svc.describe_trial_component(alice, TEAM, "c").metrics
    assert summary.count == len(values)
    assert (summary.min, summary.max, summary.last) == (0.1, 0.9, 0.8)
    assert summary.avg == pytest.approx(statistics.fmean(values))
    assert summary.std_dev == pytest.approx(statistics.stdev(values))
    series = svc.metric_series(alice, TEAM, "c", "loss")
    assert series.values == values


def test_workshop_filter_lists_preprocessing_and_training(teams: Platform, alice: RequestContext) -> None:
    _workshop(teams, alice)
    expression = {"Filters": [{"Name": "Parents.TrialName", "Operator": "Equals", "Value": "xgboost-1"}]}
    table = teams.experiments.search(
        alice, TEAM, SearchRequest(experiment_name="credit-default", search_expression=expression, sort_by="Name")
    )
    data = table.data
    assert data["TrialComponentName"] == ["preprocessing", "training"]
    assert data["DisplayName"] == ["Preprocessing", "Training"]
    assert data["train_test_split_ratio"] == [0.2, None]
    assert data["max_depth"] == [None, 5.0]
    assert data["objective"] == [None, "binary:logistic"]
    assert data["validation:auc - Last"] == [None, 0.77]
    assert data["validation:auc - Max"] == [None, 0.78]
    assert data["validation:auc - Count"] == [None, 4]
    assert data["validation:auc - StdDev"][1] == pytest.approx(statistics.stdev([0.70, 0.75, 0.78, 0.77]))
    assert data["raw - Value"] == ["sr://risk-data/raw.csv", None]
    assert data["model - Value"] == [None, "sr://risk-data/m.tgz"]
    assert data["SourceArn"] == ["", "srn:strongroom:risk:training-job/train-1"]
    assert data["Trials"] == [["xgboost-1"], ["xgboost-1"]]
    assert data["Experiments"] == [["credit-default"], ["credit-default"]]
    for stat in ("Min", "Max", "Avg", "StdDev", "Last", "Count"):
        assert f"validation:auc - {stat}" in table.columns


@pytest.mark.parametrize(
    ("flt", "expected"),
    [
        ({"Name": "TrialComponentName", "Operator": "NotEquals", "Value": "other"}, ["preprocessing", "training"]),
        ({"Name": "DisplayName", "Operator": "Contains", "Value": "rain"}, ["training"]),
        ({"Name": "Parameters.max_depth", "Operator": "GreaterThan", "Value": "6"}, ["other"]),
        ({"Name": "Parameters.max_depth", "Operator": "LessThan", "Value": 6}, ["training"]),
        ({"Name": "Parameters.objective", "Operator": "Equals", "Value": "binary:logistic"}, ["training"]),
        ({"Name": "Metrics.validation:auc.Max", "Operator": "GreaterThan", "Value": "0.7"}, ["training"]),
        ({"Name": "Metrics.validation:auc", "Operator": "LessThan", "Value": "0.7"}, ["other"]),
        ({"Name": "TrialComponentName", "Operator": "In", "Value": "other, training"}, ["other", "training"]),
        ({"Name": "Parents.TrialName", "Operator": "In", "Value": ["xgboost-2"]}, ["other"]),
        ({"Name": "Parents.TrialName", "Operator": "NotEquals", "Value": "xgboost-1"}, ["other"]),
        ({"Name": "Status", "Operator": "Equals", "Value": "Completed"}, ["training"]),
        ({"Name": "Contains%_", "Operator": "Equals", "Value": "x"}, None),
    ],
)
def test_filter_operators(teams: Platform, alice: RequestContext, flt: dict, expected: list[str] | None) -> None:
    _workshop(teams, alice)
    request = SearchRequest(search_expression={"Filters": [flt]}, sort_by="Name")
    if expected is None:
        with pytest.raises(InvalidInput) as bad:
            teams.experiments.search(alice, TEAM, request)
        assert bad.value.field == "Filters[0]"
        return
    assert teams.experiments.search(alice, TEAM, request).data["TrialComponentName"] == expected


def test_tag_filters_and_sorting(teams: Platform, alice: RequestContext) -> None:
    _workshop(teams, alice)
    teams.experiments.update_trial_component(alice, TEAM, ComponentUpdate(name="other", tags={"stage": "prod"}))
    tagged = SearchRequest(
        search_expression={"Filters": [{"Name": "Tags.stage", "Operator": "Equals", "Value": "prod"}]}
    )
    assert teams.experiments.search(alice, TEAM, tagged).data["TrialComponentName"] == ["other"]
    by_auc = SearchRequest(sort_by="Metrics.validation:auc.Last", sort_order="Descending")
    assert teams.experiments.search(alice, TEAM, by_auc).data["TrialComponentName"] == [
        "training",
        "other",
        "preprocessing",
    ]


@pytest.mark.parametrize(
    "expression",
    [
        {"Filters": [{"Name": "TrialComponentName; DROP TABLE trial_components", "Operator": "Equals", "Value": "x"}]},
        {"Filters": [{"Name": "TrialComponentName", "Operator": "Equals' OR '1'='1", "Value": "x"}]},
        {"Filters": [{"Name": "TrialComponentName", "Operator": "Like", "Value": "%"}]},
        {"Filters": [{"Name": "Metrics.auc.Max", "Operator": "GreaterThan", "Value": "0 OR 1=1"}]},
        {"Filters": [{"Name": "Parameters.", "Operator": "Equals", "Value": "x"}]},
        {"Filters": [{"Name": "Parameters.x", "Operator": "Equals", "Value": ["a", "b"]}]},
        {"Filters": [{"Name": "Sql.raw", "Operator": "Equals", "Value": "1"}]},
    ],
)
def test_malicious_filters_are_rejected_naming_the_filter(
    teams: Platform, alice: RequestContext, expression: dict
) -> None:
    _workshop(teams, alice)
    with pytest.raises(InvalidInput) as bad:
        teams.experiments.search(alice, TEAM, SearchRequest(search_expression=expression))
    assert bad.value.field == "Filters[0]"
    assert len(teams.experiments.list_trial_components(alice, TEAM)) == 3


def test_sql_in_values_is_only_data(teams: Platform, alice: RequestContext) -> None:
    _workshop(teams, alice)
    for value in ("' OR '1'='1", "x'); DROP TABLE trial_components; --", "%"):
        flt = {"Name": "TrialComponentName", "Operator": "Equals", "Value": value}
        assert teams.experiments.search(alice, TEAM, SearchRequest(search_expression={"Filters": [flt]})).count == 0
        contains = {"Name": "Parameters.scaler", "Operator": "Contains", "Value": value}
        request = SearchRequest(search_expression={"Filters": [contains]})
        assert teams.experiments.search(alice, TEAM, request).count == 0
    with pytest.raises(InvalidInput) as bad_sort:
        teams.experiments.search(alice, TEAM, SearchRequest(sort_by="name; DROP TABLE x"))
    assert bad_sort.value.field == "sort_by"
    assert len(teams.experiments.list_trial_components(alice, TEAM)) == 3


def test_batches_are_all_or_nothing(teams: Platform, alice: RequestContext) -> None:
    svc = teams.experiments
    svc.create_trial_component(alice, TEAM, "real")
    point = MetricColumns(component="real", names=["m"], values=[1.0], steps=[0], timestamps=[time.time()])
    with pytest.raises(NotFound):
        svc.batch_update(alice, TEAM, [ComponentUpdate(name="ghost", status="Completed")], [point])
    with pytest.raises(Conflict):
        svc.batch_update(alice, TEAM, creates=[ComponentCreate(name="fresh"), ComponentCreate(name="real")])
    assert svc.describe_trial_component(alice, TEAM, "real").metrics == []
    assert [c.name for c in svc.list_trial_components(alice, TEAM)] == ["real"]
    svc.batch_update(
        alice, TEAM, [ComponentUpdate(name="fresh", status="Completed")], creates=[ComponentCreate(name="fresh")]
    )
    assert svc.describe_trial_component(alice, TEAM, "fresh").status == "Completed"


def test_metric_only_batches_find_components_by_team(
    teams: Platform, alice: RequestContext, mallory: RequestContext
) -> None:
    """A batch of metric points only (what each durable log_metric sends) names components of
    the caller's team: a name that exists only in another team is unknown, and nothing is kept."""
    svc = teams.experiments
    svc.create_trial_component(mallory, "fraud", "training")
    svc.create_trial_component(alice, TEAM, "preprocessing")
    now = time.time()

    def point(component: str, value: float, step: int) -> MetricColumns:
        return MetricColumns(
            component=component, names=["validation:auc"], values=[value], steps=[step], timestamps=[now]
        )

    with pytest.raises(NotFound):
        svc.batch_update(alice, TEAM, metric_columns=[point("training", 0.74, 0)])
    with pytest.raises(NotFound):
        svc.batch_update(alice, TEAM, metric_columns=[point("preprocessing", 0.74, 0), point("training", 0.77, 1)])
    assert svc.describe_trial_component(alice, TEAM, "preprocessing").metrics == []
    assert svc.describe_trial_component(mallory, "fraud", "training").metrics == []
    svc.create_trial_component(alice, TEAM, "training")
    for step, auc in enumerate([0.74, 0.77, 0.78]):
        svc.batch_update(alice, TEAM, metric_columns=[point("training", auc, step), point("preprocessing", 1.0, step)])
    (auc,) = svc.describe_trial_component(alice, TEAM, "training").metrics
    assert (auc.count, auc.min, auc.max, auc.last) == (3, 0.74, 0.78, 0.78)
    assert svc.describe_trial_component(mallory, "fraud", "training").metrics == []


def test_bad_values_are_rejected(teams: Platform, alice: RequestContext) -> None:
    svc = teams.experiments
    with pytest.raises(InvalidInput):
        svc.create_trial_component(alice, TEAM, "Bad Name")
    svc.create_trial_component(alice, TEAM, "c")
    with pytest.raises(InvalidInput):
        svc.update_trial_component(alice, TEAM, ComponentUpdate(name="c", parameters={"": 1}))
    with pytest.raises(InvalidInput):
        svc.batch_update(
            alice,
            TEAM,
            metric_columns=[MetricColumns(component="c", names=["m", "m"], values=[1.0], steps=[0], timestamps=[0.0])],
        )


def test_team_boundary_and_roles(
    teams: Platform, alice: RequestContext, mallory: RequestContext, auditor: RequestContext, admin: RequestContext
) -> None:
    _workshop(teams, alice)
    with pytest.raises(Forbidden):
        teams.experiments.describe_trial_component(mallory, TEAM, "training")
    with pytest.raises(Forbidden):
        teams.experiments.search(mallory, TEAM, SearchRequest())
    with pytest.raises(Forbidden):
        teams.experiments.search(admin, TEAM, SearchRequest())
    assert teams.experiments.search(auditor, TEAM, SearchRequest()).count == 3
    with pytest.raises(Forbidden):
        teams.experiments.create_experiment(auditor, TEAM, "sneaky")


def test_job_components(teams: Platform, alice: RequestContext) -> None:
    svc = teams.experiments
    svc.create_experiment(alice, TEAM, "e")
    svc.create_trial(alice, TEAM, "t", "e")
    config = ExperimentConfig.model_validate({"ExperimentName": "e", "TrialName": "t"})
    started = svc.start_job_component(
        alice,
        TEAM,
        config,
        source="srn:strongroom:risk:training-job/train-7",
        source_type="TrainingJob",
        parameters={"max_depth": 5},
        inputs={"train": {"value": "sr://risk-data/train.csv", "version_id": "v1"}},
    )
    assert started.name == "train-7-trainingjob" and started.status == "InProgress" and started.trials == ["t"]
    done = svc.finish_job_component(
        RequestContext.system(),
        TEAM,
        started.name,
        status="Completed",
        metrics=[{"name": "validation:auc", "value": 0.8, "step": 10}],
        outputs={"model": {"value": "sr://risk-data/model.tar.gz", "version_id": "v2"}},
    )
    assert done.status == "Completed" and done.end_time is not None
    assert done.metrics[0].last == 0.8 and done.outputs["model"].version_id == "v2"
    assert [c.name for c in svc.list_trial_components(alice, TEAM, source=started.source)] == [started.name]


def test_several_components_and_their_series_are_read_at_once(
    teams: Platform, alice: RequestContext, mallory: RequestContext, auditor: RequestContext
) -> None:
    _workshop(teams, alice)
    svc = teams.experiments
    both = svc.describe_trial_components(alice, TEAM, ["training", "other"])
    assert [c.name for c in both] == ["training", "other"] and both[0].parameters["max_depth"] == 5
    series = svc.metric_series_of(alice, TEAM, ["other", "training"])
    assert [(s.component, s.name) for s in series] == [
        ("other", "validation:auc"),
        ("training", "train:auc"),
        ("training", "validation:auc"),
    ]
    assert series[2].values == [0.70, 0.75, 0.78, 0.77] and series[2].steps == [0, 1, 2, 3]
    only = svc.metric_series_of(alice, TEAM, ["training", "preprocessing"], ["validation:auc"])
    assert [(s.component, s.name) for s in only] == [("training", "validation:auc")]
    assert len(svc.metric_series_of(auditor, TEAM, ["training"])) == 2
    with pytest.raises(NotFound):
        svc.describe_trial_components(alice, TEAM, ["training", "nope"])
    with pytest.raises(Forbidden):
        svc.metric_series_of(mallory, TEAM, ["training"])
    with pytest.raises(Forbidden):
        svc.describe_trial_components(mallory, TEAM, ["training"])


def test_analytics_reads_one_snapshot_while_components_are_created(teams: Platform, alice: RequestContext) -> None:
    """A component (with parameters, metrics and a trial) committed while the table is being read
    is either wholly in it or wholly absent; before, on PostgreSQL, its parameters reached the
    second read without its row in the first and the search failed (KeyError, a 500)."""
    import threading

    from sqlalchemy import event

    _workshop(teams, alice)
    svc = teams.experiments
    engine = teams.db.engine
    created: list[str] = []

    def create_meanwhile(_conn: object, _cursor: object, statement: str, *_args: object) -> None:
        if created or "trial_component_parameters" not in statement:
            return
        created.append("late")
        worker = threading.Thread(
            target=lambda: svc.create_trial_component(
                alice, TEAM, "late", parameters={"max_depth": 3}, trial="xgboost-2"
            )
        )
        worker.start()
        worker.join(timeout=30)

    event.listen(engine, "before_cursor_execute", create_meanwhile)
    try:
        table = svc.search(alice, TEAM, SearchRequest(experiment_name="credit-default", sort_by="Name"))
    finally:
        event.remove(engine, "before_cursor_execute", create_meanwhile)
    assert created == ["late"]
    assert table.data["TrialComponentName"] == ["other", "preprocessing", "training"]
    assert table.data["max_depth"] == [9, None, 5]
    after = svc.search(alice, TEAM, SearchRequest(experiment_name="credit-default", sort_by="Name"))
    assert after.data["TrialComponentName"] == ["late", "other", "preprocessing", "training"]
