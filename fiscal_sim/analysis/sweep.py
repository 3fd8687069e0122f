"""Parameter sweeps: run a scenario over a grid or a space-filling design, one summary table out.

Grammar of a swept parameter (``--set TARGET=V1,V2,…`` or ``--range TARGET=LO:HI``):

``programs.<program_id>.parameters.<name>[.<entry>]``
    a named parameter of the program (``fiscal-sim programs show`` lists them), exactly as a scenario's
    ``overrides`` writes it (``programs.jzf2017-3.major-conversion.parameters.cap``); a table's entry by its
    category (``….parameters.amount_by_tier.A``). Program ids contain dots: the id is the longest dotted prefix
    that is a program of the catalogue. ``programs.<id>.cap`` is shorthand for the parameter the top ``max`` of a
    capped formula holds ("最高不超过"); a place in the formula tree (``formula.max``) is refused with the name.
``uptake.<program_id>.<path>``
    shorthand for ``programs.<program_id>.uptake.<path>``; a path that starts
    with a field of the count model (``mean``, ``growth``, ``rate_cv``,
    ``dispersion``, ``take_up``, ``pool``, …) is under ``uptake.count``, so
    ``uptake.X.growth`` is ``programs.X.uptake.count.growth`` and
    ``uptake.X.attrition`` is ``programs.X.uptake.attrition``.
``cost_sharing.<regime>.<fiscal_class>.<payer>``
    a payer's share (``local`` is the applicant's own jurisdiction); the other
    payers of the class share the remainder in proportion to their current shares.
``shock.sigma`` / ``shock.correlation``
    the scenario's shared uptake shock.
``overlap.<group>``
    the overlap share of a non-cumulation group (``catalogue/exclusive_groups.yaml``).

Values are YAML scalars separated by commas (``300,500,800``, ``0,0.05``).
A range ``LO:HI`` is sampled by ``--design lhs`` or ``sobol``
(:mod:`scipy.stats.qmc`, scrambled, seeded); when both bounds are written as
integers the samples are rounded to integers. ``--set`` lists are crossed
with the design points: every combination runs once. A path must already
exist in the program (a sweep cannot invent a parameter), and every swept
value is read back from the compiled program before the point runs, so a
value that would be ignored is an error, not a silent no-op.

All points share the scenario's seed: differences between points are the
parameters' effect, not noise (common random numbers).
"""

from __future__ import annotations

import copy
import datetime as dt
import difflib
import itertools
import math
import re
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Literal

import numpy as np
import pyarrow as pa
import yaml

from fiscal_sim.analysis.common import new_run_id, spec_data, variant, write_run_folder
from fiscal_sim.engine.ledger import ALL, ALL_EQUITY
from fiscal_sim.orchestrate.driver import executor_for
from fiscal_sim.orchestrate.executors import Executor
from fiscal_sim.orchestrate.run import simulate_points, summary_table
from fiscal_sim.errors import FiscalSimError
from fiscal_sim.io.outdir import inputs_of
from fiscal_sim.io.target import Remote, output
from fiscal_sim.io.parquet import manifest_header, write_json, write_table
from fiscal_sim.scenario import DATED, Budget, Scenario, check_budget, parse_budget, set_budget
from fiscal_sim.uptake.spec import Count, Uptake
from fiscal_sim.catalogue.parameters import name_at
from fiscal_sim.catalogue.schema import group_names

Design = Literal["grid", "lhs", "sobol"]
SHOCK_FIELDS = ("sigma", "correlation")


class SweepError(FiscalSimError):
    """A swept parameter that cannot be applied; the message names it as written."""


@dataclass(frozen=True)
class Target:
    """One swept parameter: as written, and where it lands."""

    text: str
    kind: Literal["program", "cost_sharing", "shock", "overlap", "budget"]
    program: str | None
    path: str
    """dotted path inside the program, ``regime.class.payer``, or the shock field"""

    @property
    def canonical(self) -> str:
        return {
            "program": f"programs.{self.program}.{self.path}",
            "cost_sharing": f"cost_sharing.{self.path}",
            "shock": f"shock.{self.path}",
            "overlap": f"overlap.{self.path}",
            "budget": f"budgets.{self.path}",
        }[self.kind]


def _scenario_programs(scen: Scenario) -> dict[str, Any]:
    return {sp.id: sp.prog for sp in scen.programs} | {p.id: p for p in scen.unpriced}


def _get(obj: Any, path: list[str]) -> Any:
    for key in path:
        obj = obj[int(key)] if isinstance(obj, list) else obj[key]
    return obj


def program_value(prog: Any, path: str) -> Any:
    """The value a program uses at ``path``; a named parameter is read where its formula reads it."""
    dump = prog.spec.model_dump(by_alias=True, mode="json")
    head, _, rest = path.partition(".")
    if head == "parameters":
        name, _, key = rest.partition(".")
        return _get(dump, prog.spec.parameters[name].at[0].split(".") + ([key] if key else []))
    return _get(dump, path.split("."))


def resolve_program(scen: Scenario, text: str, rest: str) -> tuple[str, str]:
    """Split ``<program_id>.<path>`` by the longest dotted prefix that is a program id."""
    segs = rest.split(".")
    for k in range(len(segs) - 1, 0, -1):
        pid = ".".join(segs[:k])
        if pid in scen.catalogue.programs:
            return pid, ".".join(segs[k:])
    if rest in scen.catalogue.programs:
        raise SweepError(f"{text}: no parameter path after program id {rest!r} (e.g. {text}.parameters.cap)")
    close = difflib.get_close_matches(segs[0] if len(segs) < 2 else ".".join(segs[:2]), scen.catalogue.programs, 3)
    hint = f"; did you mean {', '.join(close)}?" if close else ""
    raise SweepError(f"{text}: unknown program: no program id of the catalogue is a prefix of {rest!r}{hint}")


def check_path(text: str, prog: Any, path: str) -> None:
    """The path must exist in the program (as a scenario override requires); say what exists where it stops."""
    obj: Any = prog.spec.model_dump(by_alias=True, mode="json")
    done: list[str] = []
    for key in path.split("."):
        if isinstance(obj, list) and key.isdigit() and int(key) < len(obj):
            obj = obj[int(key)]
        elif isinstance(obj, dict) and key in obj:
            obj = obj[key]
        else:
            where = ".".join(done) or "the program"
            have = (
                ", ".join(map(str, obj))
                if isinstance(obj, dict)
                else f"items 0–{len(obj) - 1}"
                if isinstance(obj, list)
                else f"a value ({obj!r}), not a table"
            )
            raise SweepError(
                f"{text}: unknown parameter path {path!r} in program {prog.id}: "
                f"{where} has no {key!r} (it has: {have}); a sweep can only change existing parameters"
            )
        done.append(key)


def program_parameter(text: str, prog: Any, path: str) -> str:
    """A program target as ``parameters.NAME[.KEY]``: named parameters by name (``cap``: the one the formula's
    top ``max`` holds); a place in the formula tree is refused with the name to use."""
    params = prog.spec.parameters
    if path == "cap":
        held = name_at(params, "formula.max") if getattr(prog.spec.formula, "kind", None) in ("cap", "up_to") else None
        if held is None:
            raise SweepError(
                f"{text}: 'cap' is shorthand for the cap of a capped formula, but the formula of {prog.id} "
                f"is {getattr(prog.spec.formula, 'kind', None)!r}, not a cap: name the parameter "
                f"(parameters: {', '.join(params) or 'none'})"
            )
        return f"parameters.{held[0]}"
    head, _, rest = path.partition(".")
    if head == "parameters":
        name, _, key = rest.partition(".")
        if name not in params:
            close = difflib.get_close_matches(name, params, 3)
            raise SweepError(
                f"{text}: program {prog.id} has no parameter {name!r} (parameters: "
                f"{', '.join(params) or 'none'})" + (f"; did you mean {', '.join(close)}?" if close else "")
            )
        value = params[name].value
        if key and (not isinstance(value, dict) or key not in value):
            raise SweepError(f"{text}: parameter {name!r} has no entry {key!r}")
        if not key and isinstance(value, dict):
            raise SweepError(
                f"{text}: parameter {name!r} is a table ({', '.join(value)}): name one entry, "
                f"e.g. {text}.{next(iter(value))}"
            )
        return path
    held = name_at(params, path)
    if held is not None:
        raise SweepError(
            f"{text}: address parameters by name: programs.{prog.id}.parameters.{held[0]}"
            + (f".{held[1]}" if held[1] else "")
        )
    return path


def parse_target(scen: Scenario, text: str) -> Target:
    """Parse and check a swept parameter; errors name ``text`` and say what would be valid."""
    text = text.strip()
    head, _, rest = text.partition(".")
    if head in ("programs", "uptake") and rest:
        pid, path = resolve_program(scen, text, rest)
        progs = _scenario_programs(scen)
        if pid not in progs:
            raise SweepError(f"{text}: program {pid} is not in scenario {scen.spec.name!r}")
        if pid not in {sp.id for sp in scen.programs}:
            raise SweepError(
                f"{text}: program {pid} is not simulated ({progs[pid].spec.status}): sweeping it would change nothing"
            )
        prog = progs[pid]
        if head == "uptake":
            first = path.split(".")[0]
            if first not in Uptake.model_fields:
                if first not in Count.model_fields:
                    raise SweepError(
                        f"{text}: {first!r} is neither an uptake field ({', '.join(Uptake.model_fields)}) "
                        f"nor a count field ({', '.join(Count.model_fields)})"
                    )
                path = f"count.{path}"
            path = f"uptake.{path}"
        else:
            path = program_parameter(text, prog, path)
        if not path.startswith("parameters."):
            check_path(text, prog, path)
        return Target(text, "program", pid, path)
    if head == "cost_sharing":
        parts = rest.split(".")
        geo = scen.geography.data
        if len(parts) != 3:
            raise SweepError(f"{text}: expected cost_sharing.<regime>.<fiscal_class>.<payer>")
        regime, cls, payer = parts
        if regime not in geo.cost_sharing:
            raise SweepError(f"{text}: unknown cost-sharing regime {regime!r} (known: {', '.join(geo.cost_sharing)})")
        if cls not in geo.fiscal_classes:
            raise SweepError(f"{text}: unknown fiscal class {cls!r} (known: {', '.join(geo.fiscal_classes)})")
        if payer != "local" and payer not in geo.payers:
            raise SweepError(f"{text}: unknown payer {payer!r} (known: local, {', '.join(geo.payers)})")
        if not any(sp.prog.spec.cost_sharing == regime for sp in scen.programs):
            raise SweepError(f"{text}: no simulated program uses regime {regime!r}: sweeping it would change nothing")
        return Target(text, "cost_sharing", None, rest)
    if head == "shock" and rest in SHOCK_FIELDS:
        return Target(text, "shock", None, rest)
    if head == "budgets" and rest:  # budgets.PAYER[:PROGRAM]: the yearly cash line, values as --budget takes them
        check_budget(scen, parse_budget(f"{rest}=0", "--set"), text, "--set")
        return Target(text, "budget", None, rest)
    if head == "overlap" and rest:
        members = [sp.id for sp in scen.programs if rest in group_names(sp.prog.spec.exclusive_group)]
        if rest not in scen.catalogue.groups:
            raise SweepError(
                f"{text}: unknown non-cumulation group {rest!r} (known: {', '.join(scen.catalogue.groups)})"
            )
        if len(members) < 2:
            raise SweepError(
                f"{text}: group {rest!r} has fewer than two simulated programs: sweeping it would change nothing"
            )
        return Target(text, "overlap", None, rest)
    raise SweepError(
        f"{text}: unknown parameter; use programs.<program_id>.<path>, uptake.<program_id>.<path>, "
        f"cost_sharing.<regime>.<fiscal_class>.<payer>, shock.sigma|correlation, overlap.<group> "
        f"or budgets.<payer>[:<program_id>]"
    )


def parse_assignment(text: str, opt: str) -> tuple[str, str]:
    if "=" not in text:
        raise SweepError(f"{opt} {text!r}: expected TARGET=VALUES")
    target, values = text.split("=", 1)
    return target.strip(), values.strip()


def parse_values(target: str, text: str) -> list[Any]:
    """``300,500,800`` → [300, 500, 800] (YAML scalars)."""
    items = [v.strip() for v in text.split(",")]
    if not text or any(v == "" for v in items):
        raise SweepError(f"--set {target}: empty value in {text!r}")
    out = [yaml.safe_load(v) for v in items]
    bad = [
        v
        for v, x in zip(items, out)
        if isinstance(x, float)
        and not math.isfinite(x)
        or isinstance(x, str)
        and x.strip().lower().lstrip("+-") in ("inf", "infinity", "nan")
    ]
    if bad:
        raise SweepError(f"--set {target}: {', '.join(bad)} is not a finite number")
    if len({repr(v) for v in out}) < len(out):
        raise SweepError(f"--set {target}: repeated value in {text!r} (each combination runs once)")
    return out


def parse_range(target: str, text: str) -> tuple[float, float, bool]:
    """``300:800`` → (300.0, 800.0, integer?)."""
    try:
        lo_s, hi_s = text.split(":")
        lo, hi = float(lo_s), float(hi_s)
    except ValueError:
        raise SweepError(f"--range {target}: expected LO:HI, got {text!r}") from None
    if not (math.isfinite(lo) and math.isfinite(hi)):
        raise SweepError(f"--range {target}: LO and HI must be finite numbers, got {text!r}")
    if not lo < hi:
        raise SweepError(f"--range {target}: need LO < HI, got {text!r}")
    integer = all(s.strip().lstrip("+-").isdigit() for s in (lo_s, hi_s))
    return lo, hi, integer


def design_points(ranges: list[tuple[float, float, bool]], design: Design, samples: int, seed: int) -> np.ndarray:
    """``samples`` points (samples × d) over the ranges: Latin hypercube or scrambled Sobol'."""
    from scipy.stats import qmc  # imported here: scipy.stats costs about a second to import

    d = len(ranges)
    if design == "lhs":
        unit = qmc.LatinHypercube(d=d, seed=seed).random(samples)
    elif design == "sobol":
        with warnings.catch_warnings():  # balance is best at powers of 2; other sizes are still valid points
            warnings.simplefilter("ignore", UserWarning)
            unit = qmc.Sobol(d=d, scramble=True, seed=seed).random(samples)
    else:
        raise SweepError(f"unknown design {design!r}: use grid, lhs or sobol")
    pts = qmc.scale(unit, [r[0] for r in ranges], [r[1] for r in ranges])
    for j, (_, _, integer) in enumerate(ranges):
        if integer:
            pts[:, j] = np.rint(pts[:, j])
    return pts


@dataclass
class Plan:
    """The swept parameters and every point to run (one value per parameter)."""

    targets: list[Target]
    points: list[tuple[Any, ...]]
    design: Design


def plan(
    scen: Scenario,
    sets: list[str],
    ranges: list[str],
    design: Design = "grid",
    samples: int | None = None,
    seed: int | None = None,
) -> Plan:
    """Parse ``--set``/``--range`` options into the list of points; check every target up front."""
    grid: list[tuple[Target, list[Any]]] = []
    spans: list[tuple[Target, tuple[float, float, bool]]] = []
    for text in sets:
        t, v = parse_assignment(text, "--set")
        target, values = parse_target(scen, t), parse_values(t, v)
        if target.kind == "budget":  # 2亿, 2.5亿, 30000 (万元): one unit in the sweep's column, 万元
            values = [parse_budget(f"{target.path}={x}", "--set").amount for x in values]
        grid.append((target, values))
    for text in ranges:
        t, v = parse_assignment(text, "--range")
        spans.append((parse_target(scen, t), parse_range(t, v)))
    targets = [t for t, _ in grid] + [t for t, _ in spans]
    if not targets:
        raise SweepError("nothing to sweep: give --set TARGET=V1,V2,… or --range TARGET=LO:HI with --design lhs|sobol")
    seen: dict[str, str] = {}
    for t in targets:
        key = t.canonical if t.kind != "cost_sharing" else "cost_sharing." + t.path.rsplit(".", 1)[0]
        if key in seen:
            raise SweepError(f"{t.text}: the same parameter is already swept by {seen[key]}")
        seen[key] = t.text
    if spans and design == "grid":
        raise SweepError("--range needs a sampling design: add --design lhs or --design sobol with --samples N")
    if design != "grid":
        if not spans:
            raise SweepError(f"--design {design} samples --range parameters; none given")
        if not samples or samples < 1:
            raise SweepError(f"--design {design} needs --samples N (N ≥ 1)")
    combos = list(itertools.product(*[v for _, v in grid])) if grid else [()]
    if spans:
        pts = design_points([r for _, r in spans], design, samples or 0, scen.spec.seed if seed is None else seed)
        drawn = [tuple(int(x) if r[2] else float(x) for x, (_, r) in zip(row, spans)) for row in pts]
        points = [c + d for c in combos for d in drawn]
    else:
        points = combos
    p = Plan(targets, points, design)
    for i in range(len(points)):  # every value is checked before anything runs
        point_scenario(scen, p, i)
    return p


def _set_share(data: dict, scen: Scenario, t: Target, value: Any) -> None:
    regime, cls, payer = t.path.split(".")
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise SweepError(f"{t.text}: a share must be a number, got {value!r}") from None
    if not 0 <= v <= 1:
        raise SweepError(f"{t.text}: a share must be within 0–1, got {v:g}")
    current = dict(
        data["cost_sharing"].get(regime, {}).get(cls) or scen.geography.data.cost_sharing[regime].shares[cls]
    )
    others = {k: s for k, s in current.items() if k != payer}
    if sum(others.values()) <= 0 and v < 1:
        raise SweepError(f"{t.text}: {payer} is the only payer of {cls} under {regime}: no other payer takes the rest")
    scale = (1 - v) / sum(others.values()) if others and sum(others.values()) > 0 else 0.0
    shares = {k: s * scale for k, s in others.items() if s * scale > 0} | {payer: v}
    data["cost_sharing"].setdefault(regime, {})[cls] = shares


def split_dated(target: str, value: Any) -> tuple[Any, dt.date | None]:
    """A program value as given: ``600`` (from the start) or ``600@2027-01-01`` (awards decided from that day on)."""
    if not isinstance(value, str) or "@" not in value:
        return value, None
    number, _, day = value.partition("@")
    try:
        return yaml.safe_load(number), dt.date.fromisoformat(day.strip())
    except ValueError:
        raise SweepError(f"{target}: {value!r}: expected VALUE@YYYY-MM-DD, e.g. 600@2027-01-01") from None


def point_scenario(scen: Scenario, p: Plan, i: int) -> Scenario:
    """The scenario of point ``i``: values applied, compiled, and read back from what will run."""
    data = copy.deepcopy(spec_data(scen))
    values = p.points[i]
    for t, v in zip(p.targets, values):
        if t.kind == "program":
            value, since = split_dated(t.text, v)
            if since is None:
                data["overrides"].setdefault(t.program, {})[t.path] = value
            else:
                dated = data["dated_overrides"].setdefault(since.isoformat(), {})
                dated.setdefault(t.program, {})[t.path] = value
        elif t.kind == "cost_sharing":
            _set_share(data, scen, t, v)
        elif t.kind == "overlap":
            data["overlap"][t.path] = v
        elif t.kind == "budget":
            lines = set_budget(
                [Budget.model_validate(b) for b in data["budgets"]], parse_budget(f"{t.path}={v}", "--set")
            )
            data["budgets"] = [b.model_dump(by_alias=True) for b in lines]
        else:
            data["shock"][t.path] = v
    label = f"sweep point {i}: " + ", ".join(f"{t.text}={v}" for t, v in zip(p.targets, values))
    v_scen = variant(scen, data, label)
    check_applied(v_scen, p.targets, values, label)
    return v_scen


def check_applied(scen: Scenario, targets: list[Target], values: tuple, label: str) -> None:
    """Every swept value must be what the compiled scenario uses (nothing silently ignored)."""
    progs = {sp.id: sp.prog for sp in scen.programs}
    for t, v in zip(targets, values):
        if t.kind == "program":
            v, since = split_dated(t.text, v)
            pid = t.program if since is None else f"{t.program}{DATED}{since}"
            if pid not in progs:
                raise SweepError(f"{label}: {t.text}: program {pid} is not simulated at this point")
            used = program_value(progs[pid], t.path)
        elif t.kind == "cost_sharing":
            regime, cls, payer = t.path.split(".")
            used = scen.spec.cost_sharing[regime][cls][payer]
        elif t.kind == "overlap":
            used = next((g.overlap for g in scen.groups if g.name == t.path), 0.0)
        elif t.kind == "budget":
            want = parse_budget(f"{t.path}={v}", "--set")
            used = next(
                (
                    b.amount
                    for b in scen.spec.budgets
                    if (b.payer, b.program, b.year) == (want.payer, want.program, None) and b.measure == "cash"
                ),
                None,
            )
            v = want.amount
        else:
            used = getattr(scen.spec.shock, t.path)
        same = (
            math.isclose(float(used), float(v), rel_tol=1e-12, abs_tol=1e-12)
            if isinstance(used, (int, float)) and isinstance(v, (int, float))
            else used == v
        )
        if not same:
            raise SweepError(f"{label}: {t.text}: asked for {v!r} but the program uses {used!r}")


def sql_names(targets: list[Target]) -> list[str]:
    """SQL-safe column names of the swept parameters: lower case, ``[a-z0-9_]``, unique
    (``programs.jzf2017-3.major-conversion.cap`` → ``programs_jzf2017_3_major_conversion_cap``)."""
    out: list[str] = []
    for t in targets:
        base = re.sub(r"_+", "_", re.sub(r"[^a-z0-9]", "_", t.text.lower())).strip("_") or "parameter"
        base = base if not base[0].isdigit() else f"p_{base}"
        name, k = base, 2
        while name in out:
            name, k = f"{base}_{k}", k + 1
        out.append(name)
    return out


def _field(name: str, target: Target, values: list[Any]) -> tuple[pa.Field, pa.Array]:
    """A swept parameter's column, with the path as written in the field's metadata (``fiscal_sim.path``)."""
    arr = _value_column(values)
    return pa.field(
        name, arr.type, metadata={"fiscal_sim.path": target.text, "fiscal_sim.canonical": target.canonical}
    ), arr


def _value_column(values: list[Any]) -> pa.Array:
    if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
        if all(isinstance(v, int) for v in values):
            return pa.array(values, pa.int64())
        return pa.array([float(v) for v in values], pa.float64())
    if all(isinstance(v, bool) for v in values):
        return pa.array(values, pa.bool_())
    return pa.array([None if v is None else str(v) for v in values], pa.string())


@dataclass
class SweepResult:
    out: Path | Remote
    run_id: str
    plan: Plan
    table: pa.Table


def sweep(
    scen: Scenario,
    p: Plan,
    out: Path | str | Remote,
    workers: int = 1,
    totals_only: bool = False,
    command: list[str] | None = None,
    progress: Callable[[int, int], None] | None = None,
    executor: Executor | None = None,
) -> SweepResult:
    """Run every point of ``p``; write ``sweep.parquet``, ``points.parquet`` and ``manifest.json`` to ``out``."""
    run_id = new_run_id()
    parts: dict[int, pa.Table] = {}
    keep_programs = {ALL, ALL_EQUITY} | {t.program for t in p.targets if t.program}
    points = [point_scenario(scen, p, i) for i in range(len(p.points))]
    done = 0
    with output(out, "sweep", run_id, inputs_of(scen)) as dest:
        tmp = dest.folder
        for i, acc, lay in simulate_points(points, executor_for(executor, workers)):
            v = points[i]
            table = summary_table(v, lay, acc)
            if totals_only:
                mask = np.isin(np.array(lay.program, dtype=object), list(keep_programs))
                table = table.filter(pa.array(mask))
            fields = [
                _field(n, t, [p.points[i][j]] * table.num_rows)
                for j, (n, t) in enumerate(zip(sql_names(p.targets), p.targets))
            ]
            fields.insert(0, (pa.field("point", pa.int32()), pa.array(np.full(table.num_rows, i, dtype=np.int32))))
            fields += [(table.schema.field(n), table[n]) for n in table.column_names]
            parts[i] = pa.Table.from_arrays([a for _, a in fields], schema=pa.schema([f for f, _ in fields]))
            if i == 0:
                write_run_folder(tmp / "point-0", v, lay, acc, run_id, command, {"role": "sweep point 0"})
            done += 1
            if progress:
                progress(done, len(p.points))
        result = pa.concat_tables([parts[i] for i in sorted(parts)], promote_options="permissive")
        write_table(
            result,
            tmp / "sweep.parquet",
            run_id,
            scenario=scen.spec.name,
            swept=", ".join(t.text for t in p.targets),
            **{f"fiscal_sim.column.{n}": t.text for n, t in zip(sql_names(p.targets), p.targets)},
        )
        write_table(points_table(p), tmp / "points.parquet", run_id)
        write_json(sweep_manifest(scen, p, run_id, command, totals_only), tmp / "manifest.json")
    return SweepResult(dest.location, run_id, p, result)


def point_totals(table: pa.Table, p: Plan, payers: tuple[str, ...]) -> list[tuple[Any, ...]]:
    """Per point: ``(point, values, row of payers[0], row of payers[1], …)`` — the horizon grant cash of all
    programs (``program = 'ALL'``, ``vintage = 'ALL'``: never the existing/new split), ``{}`` where absent."""
    rows = [
        r
        for r in table.to_pylist()
        if r["program"] == ALL
        and r["vintage"] == ALL
        and r["measure"] == "cash"
        and r["period"] == "horizon"
        and r["payer"] in payers
    ]
    by = {(r["point"], r["payer"]): r for r in rows}
    return [(i, pt, *[by.get((i, payer), {}) for payer in payers]) for i, pt in enumerate(p.points)]


def points_table(p: Plan) -> pa.Table:
    """One row per point: its number and the value of every swept parameter."""
    fields = [(pa.field("point", pa.int32()), pa.array(np.arange(len(p.points), dtype=np.int32)))]
    fields += [
        _field(n, t, [pt[j] for pt in p.points]) for j, (n, t) in enumerate(zip(sql_names(p.targets), p.targets))
    ]
    return pa.Table.from_arrays([a for _, a in fields], schema=pa.schema([f for f, _ in fields]))


def sweep_manifest(scen: Scenario, p: Plan, run_id: str, command: list[str] | None, totals_only: bool) -> dict:
    return {
        **manifest_header(run_id, command, kind="sweep"),
        "scenario": {"name": scen.spec.name, "path": scen.path, "sha256": scen.sha256},
        "catalogue_sha256": scen.catalogue.sha256(),
        "seed_entropy": scen.spec.seed,
        "draws": scen.spec.draws,
        "design": p.design,
        "points": len(p.points),
        "parameters": [
            {
                "column": n,
                "as_given": t.text,
                "kind": t.kind,
                "program": t.program,
                "path": t.path,
                "canonical": t.canonical,
            }
            for n, t in zip(sql_names(p.targets), p.targets)
        ],
        "series": "totals and swept programs" if totals_only else "all",
        "money_unit": "CNY (yuan); columns ending in _cny",
        "files": {
            "sweep": "sweep.parquet",
            "points": "points.parquet",
            "point_0": "point-0/ (run-like folder of the first point: dimension tables, summary)",
        },
    }


def with_assignments(scen: Scenario, sets: list[str]) -> Scenario:
    """``scen`` with ``--set TARGET=VALUE`` applied (the sweep's grammar, one value each), checked as a sweep
    point is."""
    if not sets:
        return scen
    p = plan(scen, sets, [])
    if len(p.points) != 1:
        raise SweepError("--set takes one value per target here (several values: fiscal-sim sweep)")
    return point_scenario(scen, p, 0)
