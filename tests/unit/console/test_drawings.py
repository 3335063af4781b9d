"""The console's drawings: metric charts keep their shape and say what they show; the lineage
layout puts what flowed left of where it flowed (commit and data, then the run, then the model)."""

from __future__ import annotations

from strongroom.console.graph_layout import NODE_W, graph_href, layout
from strongroom.console.line_charts import MAX_POINTS, Series, line_chart, nice_ticks, number
from strongroom.lineage.models import LineageEdge, LineageGraph, LineageNode


def test_ticks_are_round_and_cover_the_values() -> None:
    assert nice_ticks(0.693, 0.887) == [0.65, 0.7, 0.75, 0.8, 0.85, 0.9]
    assert nice_ticks(0, 99) == [0, 25, 50, 75, 100]
    assert number(0.88712345) == "0.8871" and number(1234567.0) == "1.23e+06" and number(0.0) == "0"


def test_a_chart_maps_the_best_step_highest_and_describes_the_curve() -> None:
    auc = [0.70, 0.74, 0.79, 0.81, 0.80]
    chart = line_chart("validation:auc", [Series("xgb-depth-5", list(range(5)), auc)], y_label="auc")
    (line,) = chart.lines
    points = [tuple(map(float, p.split(","))) for p in line.points.split()]
    xs = [x for x, _ in points]
    assert len(points) == 5 and xs == sorted(xs)  # x grows with the step
    ys = [y for _, y in points]
    assert ys.index(min(ys)) == 3  # SVG y grows downwards: the best AUC is the highest point
    assert chart.left <= min(x for x, _ in points) and max(x for x, _ in points) <= chart.right
    assert "5 values from 0.7 to 0.8 (min 0.7, max 0.81)" in chart.description


def test_a_long_series_is_thinned_keeping_its_ends_and_missing_steps_are_indices() -> None:
    values = [float(i % 7) for i in range(4001)]
    chart = line_chart("loss", [Series("run", [None] * 4001, values)])
    points = chart.lines[0].points.split()
    assert len(points) == MAX_POINTS and chart.lines[0].count == 4001
    assert points[-1].split(",")[0] == str(float(chart.right))  # step 4000, the last, ends the axis
    assert line_chart("empty", [Series("run", [], [])]).lines == []


def _node(srn: str, type_: str, depth: int) -> LineageNode:
    kind = "trial-component" if type_ == "TrainingJob" else "artifact"
    return LineageNode(srn=srn, kind=kind, type=type_, name=srn.rsplit("/", 1)[-1], depth=depth)


def test_the_layout_layers_commit_and_data_before_the_run_before_the_model() -> None:
    run = "srn:strongroom:risk:job/train-credit"
    nodes = [
        _node(run, "TrainingJob", 0),
        _node("srn:strongroom:risk:artifact/commit", "Commit", 1),
        _node("srn:strongroom:risk:artifact/train", "DataSet", 1),
        _node("srn:strongroom:risk:artifact/model", "Model", 1),
    ]
    edges = [
        LineageEdge(source=nodes[1].srn, destination=run, type="AssociatedWith"),
        LineageEdge(source=nodes[2].srn, destination=run, type="ContributedTo"),
        LineageEdge(source=run, destination=nodes[3].srn, type="Produced"),
    ]
    graph = LineageGraph(start=run, direction="both", depth=1, nodes=nodes, edges=edges)
    drawing = layout(graph, nodes, "both", 3)
    x = {b.type: b.x for b in drawing.boxes}
    assert x["Commit"] == x["DataSet"] < x["TrainingJob"] < x["Model"]
    assert [b.start for b in drawing.boxes if b.type == "TrainingJob"] == [True]
    assert drawing.width >= 3 * NODE_W and len(drawing.arrows) == 3
    assert all(a.path.startswith("M") for a in drawing.arrows)
    href = graph_href("srn:strongroom:risk:artifact/<script>", "upstream", 2)
    assert (
        href
        == "/console/lineage/graph?srn=srn%3Astrongroom%3Arisk%3Aartifact%2F%3Cscript%3E&direction=upstream&depth=2"
    )
