"""The Python front door: plain functions over the engine, results in memory, files a separate step.

A notebook session, in five lines (the baseline at 200 draws)::

    >>> import fiscal_sim as fs
    >>> base = fs.load("scenarios/baseline.yaml").with_settings(draws=200)
    >>> res = fs.simulate(base)
    >>> city = res.cash("city")                     # the city's cash by fiscal year (yuan): mean, P90, P(exceed)
    >>> [int(y) for y in city.index[:3]]
    [2025, 2026, 2027]
    >>> bool((city.p90_cny >= city.mean_cny).all())
    True
    >>> res.headline["draws"]
    200

Everything here is a thin call into the packages below it (scenario, orchestrate, analysis, calibrate, calc);
the CLI and the workbench are other faces on the same functions.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Sequence

if TYPE_CHECKING:  # pragma: no cover
    import datetime as dt

    import pandas as pd
    import pyarrow as pa

    from fiscal_sim.analysis.assumptions import LedgerResult
    from fiscal_sim.analysis.compare import CompareResult
    from fiscal_sim.analysis.sensitivity import SensitivityResult
    from fiscal_sim.analysis.sweep import SweepResult
    from fiscal_sim.calc import CaseResult
    from fiscal_sim.calibrate.backtest import BacktestResult
    from fiscal_sim.orchestrate.executors import Executor
    from fiscal_sim.orchestrate.run import RunResult
    from fiscal_sim.scenario import Scenario
    from fiscal_sim.stats import Accumulator

__all__ = [
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
]

Progress = Callable[[int], None]
"""Called with the number of draws (or points) just finished."""


def load(
    path: str | Path,
    *,
    draws: int | None = None,
    seed: int | None = None,
    chunk_size: int | None = None,
    sets: Sequence[str] = (),
    budgets: Sequence[str] = (),
) -> "Scenario":
    """Read, validate and compile a scenario file (errors name file, program and field); the run settings,
    ``--set`` assignments (one value each) and ``--budget`` lines given replace the file's."""
    from fiscal_sim.errors import FiscalSimError
    from fiscal_sim.scenario import load_scenario, with_budgets
    from fiscal_sim.terminal import plain_error

    scen = load_scenario(path)
    try:
        scen = scen.with_settings(draws=draws, seed=seed, chunk_size=chunk_size)
    except ValueError as e:
        raise FiscalSimError(f"{path}: bad run setting: {plain_error(e)}") from None
    return with_budgets(_with_sets(scen, sets), list(budgets))


@dataclass(frozen=True)
class Assignment:
    """One checked ``--set`` line: where it goes in a scenario file (``kind`` program, overlap, cost_sharing,
    shock or budget; ``program`` and ``path`` inside it) and its value."""

    text: str
    kind: str
    program: str | None
    path: str
    value: Any
    since: "dt.date | None" = None
    """a program value's first day (``VALUE@DATE``: awards decided from then on), None: from the start"""


def assignments(scenario: "Scenario | str | Path", sets: Sequence[str]) -> list[Assignment]:
    """Check ``--set`` lines (one value each) against ``scenario`` as a sweep point is checked; a problem raises
    :class:`fiscal_sim.errors.FiscalSimError` naming the line."""
    from fiscal_sim.analysis.sweep import SweepError, plan, split_dated

    if not sets:
        return []
    p = plan(_scenario(scenario), list(sets), [])
    if len(p.points) != 1:
        raise SweepError("one value per line here (several values make a sweep)")
    out = []
    for t, v in zip(p.targets, p.points[0]):
        value, since = split_dated(t.text, v) if t.kind == "program" else (v, None)
        out.append(Assignment(t.text, t.kind, t.program, t.path, value, since))
    return out


def sweep_points(scenario: "Scenario | str | Path", sets: Sequence[str]) -> list[tuple[Any, ...]]:
    """Check a sweep's ``TARGET=V1,V2`` lines against ``scenario`` before it runs; returns each point's values."""
    from fiscal_sim.analysis.sweep import plan

    return list(plan(_scenario(scenario), list(sets), []).points)


def _scenario(s: "Scenario | str | Path") -> "Scenario":
    return load(s) if isinstance(s, (str, Path)) else s


def _with_sets(scen: "Scenario", sets: Sequence[str]) -> "Scenario":
    """The scenario with ``--set``-style assignments applied (one value each; several: :func:`sweep`)."""
    if not sets:
        return scen
    from fiscal_sim.analysis.sweep import with_assignments

    return with_assignments(scen, list(sets))


@dataclass
class Result:
    """One scenario simulated in memory: the summary statistics (an Arrow table, yuan), the headline and the
    streaming statistics they came from. Nothing is written until :func:`write`."""

    scenario: "Scenario"
    summary: pa.Table
    headline: dict[str, Any]
    accumulator: "Accumulator" = field(repr=False)

    def to_pandas(self) -> "pd.DataFrame":
        """The summary as a pandas DataFrame (nullable dtypes: ``fiscal_year`` stays an integer)."""
        return self.summary.to_pandas(types_mapper=_nullable)

    def cash(self, payer: str = "ALL", program: str = "ALL") -> "pd.DataFrame":
        """Cash by fiscal year for one payer and program (all-vintage series), indexed by ``fiscal_year``."""
        df = self.to_pandas()
        df = df[
            (df.payer == payer)
            & (df.program == program)
            & (df.vintage == "ALL")
            & (df.measure == "cash")
            & (df.period == "year")
        ]
        return df.set_index("fiscal_year").sort_index()


def _nullable(t: pa.DataType) -> Any:
    import pandas as pd
    import pyarrow as pa

    return {
        pa.int16(): pd.Int16Dtype(),
        pa.int32(): pd.Int32Dtype(),
        pa.int64(): pd.Int64Dtype(),
        pa.bool_(): pd.BooleanDtype(),
    }.get(t)


def simulate(
    scenario: "Scenario | str | Path",
    *,
    draws: int | None = None,
    seed: int | None = None,
    sets: Sequence[str] = (),
    workers: int = 1,
) -> Result:
    """Simulate a scenario in memory (no files): summary, headline and statistics.

    ``sets`` are ``--set`` assignments applied first; ``workers`` > 1 uses a local process pool. Results are
    bit-identical whatever the workers (randomness from the scenario's SeedSequence, keyed by block of draws).
    """
    from fiscal_sim import headline
    from fiscal_sim.io.dimensions import payers_table, programs_table
    from fiscal_sim.orchestrate.driver import executor_for
    from fiscal_sim.orchestrate.run import breach_parts, manifest, simulate as run_chunks, summary_table, tail_means

    scen = _scenario(scenario)
    scen = _with_sets(scen.with_settings(draws=draws, seed=seed), sets)
    acc, lay, _ = run_chunks(scen, executor=executor_for(None, workers))
    summary = summary_table(scen, lay, acc)
    progs = {r["program"]: r for r in programs_table(scen).to_pylist()}
    pays = {r["payer"]: r for r in payers_table(scen).to_pylist()}
    head = headline.compute(
        summary.to_pylist(),
        progs,
        pays,
        None,
        manifest(scen, "", ["fiscal_sim.api.simulate"], workers),
        tail=tail_means(scen, acc),
        drivers=breach_parts(scen, lay, acc),
    )
    return Result(scen, summary, head, acc)


def write(
    scenario: "Scenario | str | Path",
    out: "str | Path | Any | None" = None,
    *,
    draws: int | None = None,
    workers: int = 1,
    write_draws: bool = True,
    pipeline: bool = False,
    executor: "Executor | None" = None,
    progress: Progress | None = None,
    command: Sequence[str] | None = None,
    workspace: str | Path | None = None,
) -> "RunResult":
    """Simulate and write a run folder (or a URL prefix) exactly as ``fiscal-sim run`` does; the result says
    where (``.out``), the run id, the summary table and the headline. With ``workspace`` (and no ``out``) the run
    goes to ``WORKSPACE/runs/<id>/`` and is recorded in its registry, as the workbench's runs are."""
    from fiscal_sim.errors import FiscalSimError
    from fiscal_sim.io.target import parse
    from fiscal_sim.orchestrate.run import run

    scen = _scenario(scenario).with_settings(draws=draws)
    if (out is None) == (workspace is None):
        raise FiscalSimError("say where the run goes: an output folder or a workspace, one of the two")

    def go(where: Any) -> "RunResult":
        return run(
            scen,
            parse(where) if isinstance(where, (str, Path)) else where,
            workers=workers,
            write_draws=write_draws,
            command=list(command or []) or None,
            progress=progress,
            pipeline=pipeline,
            executor=executor,
        )

    if workspace is None:
        return go(out)
    from fiscal_sim.registry import recorded

    settings = {"draws": scen.spec.draws, "seed": scen.spec.seed, "source": f"cli:{scen.path}", "command": command}
    with recorded(workspace, Path(scen.path), settings) as (_, folder):
        return go(folder)


@dataclass
class Comparison:
    """Baseline against reform with common random numbers: ``table`` is compare.parquet's content (yuan)."""

    table: pa.Table
    folder: Path | None = None

    def to_pandas(self) -> "pd.DataFrame":
        return self.table.to_pandas(types_mapper=_nullable)


def compare(
    base: "Scenario | str | Path",
    reform: "Scenario | str | Path",
    *,
    draws: int | None = None,
    workers: int = 1,
    out: str | Path | None = None,
) -> Comparison:
    """Compare two scenarios with common random numbers; kept in memory unless ``out`` names a folder."""
    from fiscal_sim.analysis.compare import compare as run_compare

    b, r = _scenario(base), _scenario(reform)
    b = b.with_settings(draws=draws)
    if out is not None:
        res = run_compare(b, r, Path(out), workers=workers)
        return Comparison(res.table, Path(out))
    with tempfile.TemporaryDirectory(prefix="fiscal-sim-compare-") as d:
        res = run_compare(b, r, Path(d) / "cmp", workers=workers, write_draws=False)
        return Comparison(res.table)


def sweep(
    scenario: "Scenario | str | Path",
    sets: Sequence[str],
    *,
    draws: int | None = None,
    workers: int = 1,
    out: str | Path | None = None,
) -> pa.Table:
    """Run a scenario over every combination of ``--set`` values (``'budgets.city=2亿,3亿'`` style); returns
    sweep.parquet's content (one block of summary rows per point), in memory unless ``out`` is given."""
    from fiscal_sim.analysis.sweep import plan, sweep as run_sweep

    scen = _scenario(scenario)
    scen = scen.with_settings(draws=draws)
    p = plan(scen, list(sets), [])
    if out is not None:
        return run_sweep(scen, p, Path(out), workers=workers).table
    with tempfile.TemporaryDirectory(prefix="fiscal-sim-sweep-") as d:
        return run_sweep(scen, p, Path(d) / "sweep", workers=workers, totals_only=True).table


def calculate(
    program: str,
    inputs: dict[str, Any] | list[dict[str, Any]],
    *,
    jurisdiction: str | None = None,
    date: str | None = None,
) -> "CaseResult":
    """One applicant's award under a program, its payment schedule and payers (as ``fiscal-sim calc``)."""
    import datetime as dt

    from fiscal_sim.calc import calculate as one_case
    from fiscal_sim.catalogue.cache import cached_catalogue

    day = dt.date.fromisoformat(date) if date else None
    return one_case(cached_catalogue(None), program, inputs, jurisdiction=jurisdiction, award_date=day)


def load_catalogue(root: str | Path | None = None) -> Any:
    """The program catalogue (``root``: a scenarios folder holding programs/ and catalogue/; default the shipped
    one), compiled once and cached on disk."""
    from fiscal_sim.catalogue.cache import cached_catalogue

    return cached_catalogue(Path(root) if root is not None else None)


def calculate_applicant(
    programs: Sequence[str],
    inputs: dict[str, Any],
    *,
    jurisdiction: str | None = None,
    date: "str | dt.date | None" = None,
    explain: bool = False,
    stay: int | None = None,
    root: str | Path | None = None,
) -> list["CaseResult"]:
    """One applicant under several programs (``fiscal-sim calc``): within a non-cumulation group only the
    highest total pays; a program id given n times is n claims; an input given as a list is one value a claim."""
    import datetime as dt

    from fiscal_sim.calc import calculate_many
    from fiscal_sim.errors import FiscalSimError

    if isinstance(date, str):
        try:
            date = dt.date.fromisoformat(date)
        except ValueError as e:
            raise FiscalSimError(f"--date {date}: expected a date written YYYY-MM-DD, e.g. 2025-03-01 ({e})") from None
    try:
        return calculate_many(
            load_catalogue(root),
            list(programs),
            inputs,
            jurisdiction=jurisdiction,
            award_date=date,
            explain=explain,
            stay=stay,
        )
    except ValueError as e:
        raise FiscalSimError(str(e)) from None


def describe(program: str) -> dict[str, Any]:
    """A program's catalogue entry as plain data (document, clause, formula, schedule, sharing, uptake)."""
    from fiscal_sim.catalogue.cache import cached_catalogue

    prog = cached_catalogue(None).get(program)
    return {
        "id": prog.id,
        "document": prog.document.number,
        "jurisdictions": list(prog.jurisdictions),
        **prog.spec.model_dump(mode="json", exclude_none=True),
    }


def scenario_of_run(
    folder: str | Path, *, draws: int | None = None, seed: int | None = None
) -> tuple["Scenario", bool]:
    """The scenario a run folder was made from, with its seed, draws, blocks and chunks (``draws``/``seed``
    replace them); the flag says whether the scenario file changed since the run (sha256 differs)."""
    import json

    from fiscal_sim.errors import FiscalSimError

    folder = Path(folder)
    try:
        m = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
        path = Path(m["scenario"]["path"])
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise FiscalSimError(f"{folder}: not a run folder with a manifest naming its scenario ({e})") from None
    scen = load(path).with_settings(
        draws=draws or m.get("draws"),
        seed=m.get("seed_entropy") if seed is None else seed,
        block_size=m.get("block_size"),
        chunk_size=m.get("chunk_size"),
    )
    return scen, scen.sha256 != m["scenario"].get("sha256")


def sensitivity(scenario: "Scenario | str | Path", *, draws: int | None = None, workers: int = 1) -> pa.Table:
    """Rank the uncertain assumptions by their rank correlation with total cost, in memory (sensitivity.parquet's
    content); ``scenario`` may be a run folder, whose scenario and settings are reused."""
    from fiscal_sim.analysis.sensitivity import collect, rank_table

    if isinstance(scenario, (str, Path)) and Path(scenario).is_dir():
        scen, _ = scenario_of_run(scenario, draws=draws)
    else:
        scen = _scenario(scenario).with_settings(draws=draws)
    factors, keys, X, T = collect(scen, workers)
    return rank_table(scen, factors, keys, X, T)


def calibration(history: str | Path, scenario: "Scenario | str | Path | None" = None) -> list[Any]:
    """Update each program's uptake prior with an award history (.csv, .parquet, .xlsx): one ``Calibration`` per
    simulated program (prior, posterior, interval, overrides); write an overlay with ``fiscal-sim calibrate``."""
    from fiscal_sim.calibrate.posterior import calibrate as run_calibrate

    hist, scen = _history(history, scenario)
    return run_calibrate(hist, scen)


def backtest(
    history: str | Path, holdout_from: int, scenario: "Scenario | str | Path | None" = None, *, draws: int = 1000
) -> pa.Table:
    """Calibrate on the years before ``holdout_from``, simulate the later ones and score them (backtest.parquet's
    content: actual against forecast quantiles, PIT, CRPS per program and year)."""
    from fiscal_sim.calibrate.backtest import run_backtest

    hist, scen = _history(history, scenario)
    with tempfile.TemporaryDirectory(prefix="fiscal-sim-backtest-") as d:
        return run_backtest(hist, scen, holdout_from, Path(d), draws=draws).table


def assumptions(
    scenario: "Scenario | str | Path",
    *,
    draws: int | None = None,
    only: Sequence[str] = (),
    workers: int = 1,
    out: str | Path | None = None,
) -> tuple[pa.Table, pa.Table]:
    """The assumption ledger: every named alternative of the catalogue (and the scenario's own) against the
    scenario with common random numbers — ``(assumptions.parquet, assumptions_budgets.parquet)`` contents,
    ranked by the money at stake; in memory unless ``out`` names a folder."""
    alts = alternatives(_scenario(scenario).with_settings(draws=draws), only)
    if out is not None:
        res = write_assumptions(alts, out, workers=workers)
        return res.table, res.budgets
    with tempfile.TemporaryDirectory(prefix="fiscal-sim-assumptions-") as d:
        res = write_assumptions(alts, Path(d) / "ledger", workers=workers)
        return res.table, res.budgets


# ---------------------------------------------------------------- the same computations, written to a folder or URL
# (what the CLI and the workbench call: files are a separate step from the in-memory functions above)


def write_compare(
    base: "Scenario | str | Path",
    reform: "Scenario | str | Path",
    out: "str | Path | Any",
    *,
    independent: bool = False,
    write_draws: bool = True,
    workers: int = 1,
    executor: "Executor | None" = None,
    progress: Progress | None = None,
    command: Sequence[str] | None = None,
) -> "CompareResult":
    """Compare with common random numbers (``independent``: the reform gets its own seed) and write the
    comparison folder: compare.parquet, the two runs' summaries, the manifest."""
    from fiscal_sim.analysis.compare import compare as run_compare

    return run_compare(
        _scenario(base),
        _scenario(reform),
        out,
        workers=workers,
        independent=independent,
        write_draws=write_draws,
        command=list(command or []) or None,
        progress=progress,
        executor=executor,
    )


def write_sweep(
    scenario: "Scenario | str | Path",
    sets: Sequence[str],
    out: "str | Path | Any",
    *,
    ranges: Sequence[str] = (),
    design: str = "grid",
    samples: int | None = None,
    design_seed: int | None = None,
    totals_only: bool = False,
    workers: int = 1,
    executor: "Executor | None" = None,
    progress: Callable[[int, int], None] | None = None,
    command: Sequence[str] | None = None,
) -> "SweepResult":
    """Run a scenario over a grid (``sets``: ``TARGET=V1,V2``) or a Latin hypercube / Sobol' design
    (``ranges``: ``TARGET=LO:HI``) and write sweep.parquet, points.parquet and the manifest."""
    from fiscal_sim.analysis.sweep import plan, sweep as run_sweep

    scen = _scenario(scenario)
    p = plan(scen, list(sets), list(ranges), design, samples, design_seed)  # type: ignore[arg-type]
    return run_sweep(
        scen,
        p,
        out,
        workers=workers,
        totals_only=totals_only,
        command=list(command or []) or None,
        progress=progress,
        executor=executor,
    )


@dataclass
class Alternatives:
    """The ledger's alternatives for a scenario, each checked and switched into it (:func:`alternatives`)."""

    scenario: "Scenario"
    names: list[Any]
    compiled: list[Any]


def alternatives(scenario: "Scenario | str | Path", only: Sequence[str] = ()) -> Alternatives:
    """Every named alternative of the catalogue and the scenario (``only``: those named), each checked and
    switched into the scenario before anything runs (a bad one is one error naming its file and name)."""
    from fiscal_sim.analysis.assumptions import compile_all, ledger_scenario, load_alternatives
    from fiscal_sim.errors import FiscalSimError

    scen = ledger_scenario(_scenario(scenario))
    alts = load_alternatives(scen)
    if only:
        unknown = sorted(set(only) - {a.name for a in alts})
        if unknown:
            raise FiscalSimError(
                f"--only {', '.join(unknown)}: no such alternative (known: {', '.join(a.name for a in alts)})"
            )
        alts = [a for a in alts if a.name in set(only)]
    return Alternatives(scen, alts, compile_all(scen, alts))


def write_assumptions(
    scenario: "Scenario | str | Path | Alternatives",
    out: "str | Path | Any",
    *,
    only: Sequence[str] = (),
    workers: int = 1,
    executor: "Executor | None" = None,
    progress: Progress | None = None,
    command: Sequence[str] | None = None,
) -> "LedgerResult":
    """The assumption ledger written to ``out`` (assumptions.parquet, assumptions_budgets.parquet, manifest);
    ``scenario`` may be :func:`alternatives` already checked."""
    from fiscal_sim.analysis.assumptions import ledger

    alts = scenario if isinstance(scenario, Alternatives) else alternatives(scenario, only)
    return ledger(
        alts.scenario,
        alts.names,
        out,
        workers=workers,
        command=list(command or []) or None,
        progress=progress,
        executor=executor,
        compiled=alts.compiled,
    )


def write_sensitivity(
    scenario: "Scenario | str | Path",
    out: str | Path,
    *,
    workers: int = 1,
    executor: "Executor | None" = None,
    progress: Progress | None = None,
) -> "SensitivityResult":
    """Rank the uncertain assumptions and write sensitivity.parquet into ``out`` (beside a run of the same
    scenario, recorded in its manifest)."""
    from fiscal_sim.analysis.sensitivity import record_in_manifest, sensitivity as run_sensitivity

    res = run_sensitivity(_scenario(scenario), Path(out), workers=workers, progress=progress, executor=executor)
    record_in_manifest(Path(out), res)
    return res


def write_backtest(
    history: str | Path,
    holdout_from: int,
    out: str | Path | None = None,
    scenario: "Scenario | str | Path | None" = None,
    *,
    draws: int = 1000,
    executor: "Executor | None" = None,
    progress: Progress | None = None,
    command: Sequence[str] | None = None,
) -> "BacktestResult":
    """The backtest written to ``out`` (default outputs/<scenario>_backtest): backtest.parquet, .json, .html and
    the training overlay."""
    from fiscal_sim.calibrate.backtest import write_backtest as run

    hist, scen = _history(history, scenario)
    target = Path(out) if out is not None else Path("outputs") / f"{scen.spec.name}_backtest"
    return run(
        hist,
        scen,
        holdout_from,
        target,
        draws=draws,
        command=list(command or []) or None,
        progress=progress,
        executor=executor,
    )


def _history(history: str | Path, scenario: "Scenario | str | Path | None") -> tuple[Any, "Scenario"]:
    """The award history read against the scenario (default: the catalogue's baseline)."""
    from fiscal_sim.calibrate.history import read_history
    from fiscal_sim.catalogue.loader import DEFAULT_ROOT

    scen = _scenario(scenario if scenario is not None else DEFAULT_ROOT / "baseline.yaml")
    return read_history(history, scen.catalogue), scen


@dataclass
class Calibrated:
    """What ``write_calibration`` wrote: the overlay, each program's calibration, the history and scenario."""

    path: Path
    calibrations: list[Any]
    history: Any
    scenario: "Scenario"


def write_calibration(
    history: str | Path, out: str | Path, scenario: "Scenario | str | Path | None" = None
) -> Calibrated:
    """Calibrate on the award history and write the scenario overlay ``out`` (a file ``fiscal-sim run`` takes)."""
    from fiscal_sim.calibrate.overlay import overlay_data, write_overlay
    from fiscal_sim.calibrate.posterior import calibrate as run_calibrate

    hist, scen = _history(history, scenario)
    cals = run_calibrate(hist, scen)
    return Calibrated(write_overlay(overlay_data(scen, hist, cals, Path(out)), Path(out)), cals, hist, scen)


# ---------------------------------------------------------------- reading results and checking files


def write_report(
    run: str | Path, out: str | Path | None = None, *, top: int = 10, cjk: bool = True, lang: str = "zh"
) -> Any:
    """The HTML report of a run or comparison folder (or a run's URL, then ``out`` is needed) and its PNGs."""
    from fiscal_sim.errors import FiscalSimError
    from fiscal_sim.io.target import readable, shown
    from fiscal_sim.report import write_report as write

    if "://" in str(run) and out is None:
        raise FiscalSimError(f"RUN_DIR {shown(str(run))} is a URL: give --out FOLDER for the report")
    with readable(str(run)) as folder:
        return write(folder, Path(out) if out is not None else None, top=top, cjk=cjk, lang=lang)


def write_brief(run: str | Path, lang: str = "zh", out: str | Path | None = None) -> Any:
    """The director's one-page brief of a run folder (HTML, and PDF when headless Chromium is found)."""
    from fiscal_sim.errors import FiscalSimError
    from fiscal_sim.report.brief import write_brief as write
    from fiscal_sim.report.data import NotARunFolder

    try:
        return write(Path(run), lang, Path(out) if out is not None else None)  # type: ignore[arg-type]
    except (NotARunFolder, OSError) as e:  # the reader's own exceptions, as one line naming the folder
        raise FiscalSimError(str(e)) from None


def export_run(run: str | Path, *, xlsx: str | Path | None = None, csv: str | Path | None = None) -> list[Path]:
    """A run folder (or its URL) for spreadsheets: an Excel workbook and/or every table as CSV; returns the files."""
    from fiscal_sim.errors import FiscalSimError
    from fiscal_sim.export import write_csv, write_xlsx
    from fiscal_sim.io.target import readable

    if xlsx is None and csv is None:
        raise FiscalSimError("say what to write: --xlsx FILE and/or --csv FOLDER")
    written: list[Path] = []
    with readable(str(run)) as folder:
        if xlsx is not None:
            written.append(write_xlsx(folder, Path(xlsx)))
        if csv is not None:
            written += write_csv(folder, Path(csv))
    return written


def check_files(paths: Sequence[str | Path], root: str | Path | None = None) -> list[str]:
    """Check program, case, scenario and catalogue files (every problem at once, naming file, program and field);
    returns one line per file checked."""
    from fiscal_sim.validate import validate_paths

    return validate_paths([Path(p) for p in paths], Path(root) if root is not None else None)


def run_cases(
    paths: Sequence[str | Path] = ("tests/cases",), root: str | Path | None = None
) -> list[tuple[Path, Any, list[str]]]:
    """YAML case files run against the catalogue (like ``openfisca test``): ``(file, case, differences)``."""
    from fiscal_sim.cases import case_files, check_file
    from fiscal_sim.errors import FiscalSimError

    where = [Path(p) for p in paths]
    files = case_files(where)
    if not files:
        raise FiscalSimError(f"no case files (YAML with `cases:`) under {', '.join(map(str, where))}")
    cat = load_catalogue(root)
    return [(f, c, bad) for f in files for c, bad in check_file(f, cat)]
