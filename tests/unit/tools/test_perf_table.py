"""README's performance table is generated from benchmarks/results and cannot drift from them."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).parents[3]


def _module(path: Path, name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


perf_table = _module(ROOT / "tools" / "perf_table.py", "perf_table")
harness = _module(ROOT / "benchmarks" / "_common.py", "_common")


def test_readme_table_is_what_the_committed_results_say() -> None:
    readme = (ROOT / "README.md").read_text()
    assert perf_table.update(readme, perf_table.render(perf_table.load())) == readme, (
        "README.md's performance table differs from benchmarks/results: run .venv/bin/python tools/perf_table.py"
    )
    assert perf_table.main(["--check"]) == 0


def test_a_hand_edited_figure_is_caught(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    readme = (ROOT / "README.md").read_text()
    row = perf_table.load()[0]
    figure = perf_table._cell(row.ours, row.unit, row.ours_range)
    assert figure in readme
    copy = tmp_path / "README.md"
    copy.write_text(readme.replace(figure, "99,999 " + row.unit, 1))
    monkeypatch.setattr(perf_table, "README", copy)
    assert perf_table.main(["--check"]) == 1
    assert perf_table.main([]) == 0 and copy.read_text() == readme  # regenerating restores it


def test_harness_runs_alternate_and_render_median_spread_and_load(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    order: list[str] = []
    ours_values = iter([10.0, 30.0, 20.0])
    peer_values = iter([2.0, 4.0, 3.0])

    def ours() -> float:
        order.append("ours")
        return next(ours_values)

    def peer() -> dict[str, float]:
        order.append("peer")
        return {"value": next(peer_values)}

    runs = harness.alternate(ours, peer, 3)
    assert order == ["ours", "peer", "peer", "ours", "ours", "peer"]  # ABBA: neither side always first
    fig = harness.figure("demo_rate", "ops/s", runs, what="a demo", peer_name="the peer", ours_mode="fast")
    line = capsys.readouterr().out.splitlines()[0]
    assert line == "demo_rate: ours=20 ops/s peer=3 ops/s ratio=6.667"
    assert fig["ours_spread"]["min"] == 10.0 and fig["ours_spread"]["max"] == 30.0
    assert fig["load_average"]["n"] >= 2

    monkeypatch.setattr(harness, "RESULTS", tmp_path)
    path = harness.save("demo", [fig], smoke=False, compared={"peer": {"version": "1.0"}})
    saved = json.loads(path.read_text())
    assert saved["harness"] == 2 and saved["compared"] == {"peer": {"version": "1.0"}}
    [row] = perf_table.load(tmp_path)
    rendered = perf_table.render([row])
    assert (
        "| demo | a demo (fast) | 20 ops/s (10-30) | the peer: 3 ops/s (2-4) | 6.67 (higher is better) | 3 + 3, load"
        in (rendered)
    )


def test_fewer_than_three_runs_per_side_are_not_accepted_for_a_figure() -> None:
    args = harness.parser("demo").parse_args(["--repeats", "1"])
    assert harness.repeats(args) == 3


def test_a_smoke_run_checks_the_benchmark_once_per_side() -> None:
    args = harness.parser("demo").parse_args(["--smoke", "--repeats", "5"])
    assert harness.repeats(args) == 1


def test_several_sides_compared_with_each_other_run_in_the_same_abba_rounds() -> None:
    # control_plane's growth figure sets our 2 processes against our 1: all four sides (ours and
    # the unguarded app, 1 and 2 processes) take turns in each round, none runs all its turns first.
    order: list[str] = []

    def side(name: str) -> harness.Measure:
        def measure() -> float:
            order.append(name)
            return float(len(order))

        return measure

    load: list[float] = []
    names = ["ours_1", "peer_1", "ours_2", "peer_2"]
    out = harness.alternate_sides([(n, side(n)) for n in names], 3, load)
    assert order == names + names[::-1] + names
    assert [len(out[n]) for n in names] == [3, 3, 3, 3] and out["ours_2"][0] == {"value": 3.0}
    assert len(load) >= 2  # sampled before and after, at least
    growth = harness.Runs(ours=out["ours_2"], peer=out["ours_1"], load=load)
    assert harness.figure("growth", "req/s", growth)["peer_runs"] == [1.0, 8.0, 9.0]
