"""Every benchmark holds under noise and says what it compared (issue 20, point 4).

Each script in ``benchmarks/`` measures through the shared harness (``benchmarks/_common.py``):
ours and the peer alternate, at least 3 runs each, with the load average sampled meanwhile, and
its JSON records what was compared (versions, modes, durability). These checks read the scripts
and the committed results; they run nothing long.
"""

from __future__ import annotations

import ast
import json
import math
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[3]
BENCHMARKS = ROOT / "benchmarks"
SCRIPTS = sorted(p for p in BENCHMARKS.glob("*.py") if not p.name.startswith("_"))
RESULTS = sorted(
    p for p in (BENCHMARKS / "results").glob("*.json") if ".smoke" not in p.name and not p.name.endswith(".raw.json")
)


def _harness_names(tree: ast.Module) -> set[str]:
    """The names a script imports from ``_common`` (by their name there)."""
    return {
        alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and node.module == "_common"
        for alias in node.names
    }


def _called(tree: ast.Module) -> set[str]:
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            if isinstance(node.func, ast.Name):
                names.add(node.func.id)
            elif isinstance(node.func, ast.Attribute):
                names.add(node.func.attr)
    return names


def _dict_keys(tree: ast.Module) -> set[str]:
    return {
        key.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Dict)
        for key in node.keys
        if isinstance(key, ast.Constant) and isinstance(key.value, str)
    }


def test_there_are_benchmarks_and_results() -> None:
    assert len(SCRIPTS) >= 10 and RESULTS


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.stem)
def test_a_benchmark_alternates_repeats_and_records_what_it_compared(script: Path) -> None:
    tree = ast.parse(script.read_text())
    imported, called = _harness_names(tree), _called(tree)
    # --smoke and --repeats, never fewer than 3 runs per side for a figure
    assert {"parser", "repeats", "figure", "save"} <= imported, f"{script.name} bypasses benchmarks/_common.py"
    assert "repeats" in called
    # ours and the peer in turns (ABBA), the load average sampled: _common.alternate, or a loop of
    # its own over more than two sides inside _common.sampling_load (serving: ours, bare, MLflow)
    assert "alternate" in imported or "sampling_load" in imported, f"{script.name} does not alternate"
    assert ("alternate" in called) or ("sampling_load" in called)
    assert "report" not in called, f"{script.name} prints a figure without its spread (use figure())"
    saves = [
        n for n in ast.walk(tree) if isinstance(n, ast.Call) and isinstance(n.func, ast.Name) and n.func.id == "save"
    ]
    assert saves and all(any(k.arg == "compared" for k in call.keywords) for call in saves), (
        f"{script.name} saves its figures without saying what it compared (save(..., compared=...))"
    )
    assert "durability" in _dict_keys(tree), f"{script.name}: its `compared` does not state the durability of each side"
    records_versions = "version" in called or any(
        isinstance(n, ast.Attribute) and n.attr == "__version__" for n in ast.walk(tree)
    )
    assert records_versions, f"{script.name}: its `compared` records no version of what ran"


@pytest.mark.parametrize("result", RESULTS, ids=lambda p: p.stem)
def test_a_committed_result_has_medians_of_three_runs_a_side_and_the_load(result: Path) -> None:
    data = json.loads(result.read_text())
    assert data["harness"] >= 2 and data["smoke"] is False, f"{result.name}: not written by the shared harness"
    assert data["compared"], f"{result.name} does not say what it compared"
    assert data["machine"]["load_average_min"] is not None
    for fig in data["figures"]:
        ours, peer = fig["ours_spread"], fig["peer_spread"]
        assert ours["n"] >= 3 and len(fig["ours_runs"]) == ours["n"], f"{fig['name']}: {ours['n']} runs of ours"
        assert ours["min"] <= ours["median"] <= ours["max"]
        if fig["peer_kind"] == "measured":
            assert peer["n"] >= 3 and len(fig["peer_runs"]) == peer["n"], f"{fig['name']}: {peer['n']} peer runs"
            assert peer["min"] <= peer["median"] <= peer["max"]
            assert math.isclose(fig["ratio"], ours["median"] / peer["median"], rel_tol=1e-9)
        else:  # a figure against a goal, or ours alone: it says so, and shows no measured peer
            assert fig["peer_kind"] in ("goal", "not run") and not fig["peer_runs"]
        assert fig["load_average"]["n"] >= 2, f"{fig['name']}: the load average was not sampled during the runs"
