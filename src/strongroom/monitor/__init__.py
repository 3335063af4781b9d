"""Model monitoring: baseline statistics, suggested constraints and violation checks.

The compute core of the managed model monitor's workflow, as plain functions over files and
DataFrames: :func:`read_csv_statistics` / :func:`compute_statistics` (``statistics.json``),
:func:`suggest_constraints` (``constraints.json``) and :func:`check_window`
(``constraint_violations.json``). See ``docs/monitoring.md``.
"""
