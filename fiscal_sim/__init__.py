"""fiscal_sim: budget and fiscal commitment simulation for municipal subsidy policies.

The Python API (:mod:`fiscal_sim.api`) is re-exported here, imported on first use so that the command line
starts without it: ``import fiscal_sim as fs; fs.simulate(fs.load("scenarios/baseline.yaml"))``.
"""

from fiscal_sim.version import __version__

_API = (
    "sweep_points",
    "assignments",
    "Assignment",
    "Result",
    "Comparison",
    "load",
    "simulate",
    "write",
    "compare",
    "sweep",
    "calculate",
    "describe",
    "scenario_of_run",
    "sensitivity",
    "calibration",
    "backtest",
    "assumptions",
    "write_compare",
    "write_sweep",
    "write_assumptions",
    "write_sensitivity",
    "write_backtest",
    "load_catalogue",
    "calculate_applicant",
    "write_calibration",
    "Calibrated",
    "alternatives",
    "Alternatives",
    "write_report",
    "write_brief",
    "export_run",
    "check_files",
    "run_cases",
)
"""The names of :mod:`fiscal_sim.api` (its ``__all__``; a test keeps the two equal)."""
__all__ = ["__version__", *_API]


def __getattr__(name: str):
    if name in _API:
        from fiscal_sim import api

        return getattr(api, name)
    raise AttributeError(f"module 'fiscal_sim' has no attribute {name!r}")
