"""Experiment pages: experiments, an experiment's trials, a trial's components, one component with
its parameters, artifacts and metric charts, and a side-by-side compare of several components.

Every page reads through ``platform.experiments`` inside its one ``ViewConsolePage`` event: the
same policy as the API lets a team's DataScientist read her team's experiments, an Auditor every
team's, and refuses anyone else.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from strongroom.console import web
from strongroom.console.catalog import teams_of
from strongroom.console.graph_layout import graph_href
from strongroom.console.line_charts import Chart, Series, line_chart, number
from strongroom.core.errors import InvalidInput
from strongroom.core.names import Srn, check_name
from strongroom.experiments.models import ArtifactValue, Experiment, TrialComponent
from strongroom.lineage.store import artifact_srn

MAX_CHARTS = 12  # metric charts on a component's page; every metric is in its table
MAX_COMPARE = 8
MAX_COMPARE_CHARTS = 6


def _names(request: Request) -> tuple[str, str]:
    return check_name(request.path_params["team"], "team"), check_name(request.path_params["name"], "name")


def job_href(source: str) -> str:
    """The console page of a component's source when it is a job (else empty)."""
    try:
        parsed = Srn.parse(source, "source")
    except InvalidInput:
        return ""
    return f"/console/jobs/{parsed.team}/{parsed.name}" if parsed.kind == "job" else ""


def artifact_href(team: str, artifact: ArtifactValue) -> str:
    """The lineage graph of a logged input or output (only locations are recorded in the graph)."""
    if "://" not in artifact.value:
        return ""
    return graph_href(artifact_srn(team, artifact.value, artifact.version_id, artifact.sha256))


def component_lineage(c: TrialComponent) -> str:
    """Where the component's lineage starts: its job's run (recorded when the job ends), else
    itself once it logged artifacts."""
    if job_href(c.source):
        return graph_href(c.source) if c.status != "InProgress" else ""
    if any("://" in a.value for a in (*c.inputs.values(), *c.outputs.values())):
        return graph_href(c.srn)
    return ""


def parameter_text(value: Any) -> str:
    """A parameter as written: numbers are stored as floats, so a whole number shows without ".0"."""
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return str(value)


@web.page
async def experiments(request: Request) -> Response:
    who = await web.caller(request)
    platform = web.platform_of(request)
    number_ = web.page_number(request)

    def view() -> tuple[web.Pager, list[str]]:
        with web.viewing(request, who, "experiments"):
            found, refused = web.across_teams(
                teams_of(platform, who), lambda t: platform.experiments.list_experiments(who.ctx, t)
            )
        found.sort(key=lambda e: e.created_at, reverse=True)
        return web.paginate(found, number_), refused

    listed, refused = await web.run(view)
    return web.render(request, "experiments/list.html", who=who, experiments=listed, refused=refused)


@web.page
async def experiment(request: Request) -> Response:
    who = await web.caller(request)
    platform = web.platform_of(request)
    team, name = _names(request)
    number_ = web.page_number(request)

    def view() -> tuple[Experiment, web.Pager]:
        with web.viewing(request, who, "experiment", team=team, name=name):
            found = platform.experiments.describe_experiment(who.ctx, team, name)
            trials = platform.experiments.list_trials(who.ctx, team, experiment_name=name)
        trials.sort(key=lambda t: t.created_at, reverse=True)
        return found, web.paginate(trials, number_)

    found, trials = await web.run(view)
    return web.render(request, "experiments/experiment.html", who=who, experiment=found, trials=trials)


@web.page
async def trial(request: Request) -> Response:
    """A trial's components with their status and final metrics, each selectable for the compare."""
    who = await web.caller(request)
    platform = web.platform_of(request)
    team, name = _names(request)
    number_ = web.page_number(request)

    def view() -> tuple[Any, list[TrialComponent]]:
        with web.viewing(request, who, "trial", team=team, name=name):
            found = platform.experiments.describe_trial(who.ctx, team, name)
            # one row more than a page says whether a next page exists; only this page is loaded
            offset = (number_ - 1) * web.PAGE_SIZE
            rows = platform.experiments.list_trial_components(
                who.ctx, team, trial=name, offset=offset, limit=web.PAGE_SIZE + 1
            )
        return found, rows

    found, rows = await web.run(view)
    return web.render(
        request,
        "experiments/trial.html",
        who=who,
        trial=found,
        components=rows[: web.PAGE_SIZE],
        page=number_,
        following=number_ + 1 if len(rows) > web.PAGE_SIZE else None,
        max_compare=MAX_COMPARE,
        job_href=job_href,
        number=number,
    )


@web.page
async def component(request: Request) -> Response:
    """One trial component: parameters, inputs and outputs (linked to their lineage), metrics and
    a chart of each metric over its steps."""
    who = await web.caller(request)
    platform = web.platform_of(request)
    team, name = _names(request)

    def view() -> tuple[TrialComponent, list[Chart]]:
        with web.viewing(request, who, "trial-component", team=team, name=name):
            found = platform.experiments.describe_trial_component(who.ctx, team, name)
            charted = [m.name for m in found.metrics[:MAX_CHARTS]]
            series = platform.experiments.metric_series_of(who.ctx, team, [name], charted) if charted else []
        charts = [line_chart(s.name, [Series(s.name, s.steps, s.values)], y_label=s.name) for s in series]
        return found, charts

    found, charts = await web.run(view)
    return web.render(
        request,
        "experiments/component.html",
        who=who,
        c=found,
        charts=charts,
        more_metrics=max(0, len(found.metrics) - MAX_CHARTS),
        parameter_text=parameter_text,
        number=number,
        job_href=job_href(found.source),
        lineage_href=component_lineage(found),
        artifact_href=artifact_href,
    )


@dataclass(frozen=True)
class Row:
    """One row of the compare table: a parameter or a metric's final value in each component."""

    name: str
    values: list[str]
    differs: bool


def _row(name: str, values: list[Any], show: Callable[[Any], str]) -> Row:
    """Differs: two components hold different values (compared exactly, shown rounded), or some
    component has none."""
    present = [v for v in values if v is not None]
    differs = len({repr(v) for v in present}) > 1 or len(present) < len(values)
    return Row(name, [show(v) if v is not None else "—" for v in values], differs)


@web.page
async def compare(request: Request) -> Response:
    """Several components of a team side by side (``?c=<name>`` repeated, 2 to ``MAX_COMPARE``):
    their parameters and final metrics, values that differ marked, and each shared metric charted."""
    who = await web.caller(request)
    platform = web.platform_of(request)
    team = check_name(request.path_params["team"], "team")
    chosen = list(dict.fromkeys(check_name(c, "c") for c in request.query_params.getlist("c")))
    if not 2 <= len(chosen) <= MAX_COMPARE:
        raise InvalidInput(f"choose from 2 to {MAX_COMPARE} trial components to compare", field="c")

    def view() -> tuple[list[TrialComponent], list[Chart]]:
        with web.viewing(request, who, "compare", team=team, components=chosen):
            found = platform.experiments.describe_trial_components(who.ctx, team, chosen)
            metrics = sorted({m.name for c in found for m in c.metrics})[:MAX_COMPARE_CHARTS]
            series = platform.experiments.metric_series_of(who.ctx, team, chosen, metrics) if metrics else []
        charts = []
        for metric in metrics:
            lines = [Series(s.component, s.steps, s.values) for s in series if s.name == metric]
            charts.append(line_chart(metric, lines, y_label=metric))
        return found, charts

    found, charts = await web.run(view)
    parameters = sorted({p for c in found for p in c.parameters})
    metric_names = sorted({m.name for c in found for m in c.metrics})
    finals = [{m.name: m.last for m in c.metrics} for c in found]
    params = [_row(p, [c.parameters.get(p) for c in found], parameter_text) for p in parameters]
    metrics = [_row(m, [f.get(m) for f in finals], number) for m in metric_names]
    return web.render(
        request,
        "experiments/compare.html",
        who=who,
        team=team,
        components=found,
        parameters=params,
        metrics=metrics,
        charts=charts,
    )
