"""Rules benchmark: three talent rules in hand-written numpy, fiscal_sim and OpenFisca-Core.

The rules (嘉委发〔2017〕4号, as encoded in ``scenarios/programs/jiaweifa_2017_4.yaml``):

* ``jwf2017-4.talent-housing`` — purchase subsidy 100/80/60/35万元 by tier, or rent subsidy 10/5/4/3万元 a year;
* ``jwf2017-4.innovation-salary`` — 70%/60%/50% of salary by class A/B/C, capped at 100/60/40万元 a year
  (long-term projects) or 50/30/15万元 (short-term), +5% for talents aged 35 or under;
* ``jwf2017-4.overseas-expert`` — 20% of salary above 30万元, at most 10万元.

``python bench/rules.py [--sizes 1000000 5000000] [--repeats 5]`` evaluates each rule for the same applicants with
each engine, checks the awards are identical (float32 engines to their precision), and prints persons per second
(medians) and the ratio of fiscal_sim to hand numpy (target ≤ 1.5×). ``fiscal_sim interp.`` is the formula-tree
interpreter (used for traces; the engine before compilation), measured in the same run for comparison. OpenFisca-Core is skipped when not installed.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import Callable

import numpy as np

REPO = Path(__file__).resolve().parents[1]
WAN = 1e4  # yuan per 万元
RULES = ("jwf2017-4.talent-housing", "jwf2017-4.innovation-salary", "jwf2017-4.overseas-expert")


def talent_inputs(n: int, seed: int = 0) -> dict[str, np.ndarray]:
    """Applicant inputs shared by the three rules: category codes and salary in whole yuan."""
    rng = np.random.default_rng(seed)
    return {
        "tier4": rng.integers(0, 4, n),  # housing tier: national, provincial, municipal, senior
        "option": rng.integers(0, 2, n),  # purchase, rent
        "tier3": rng.integers(0, 3, n),  # class A, B, C
        "term": rng.integers(0, 2, n),  # long, short
        "age_band": rng.integers(0, 2, n),  # upto35, over35
        # whole yuan, so float32 engines hold salaries exactly
        "salary": np.round(45 * WAN * np.exp(0.6 * rng.standard_normal(n))),
    }


# ── hand-written numpy: the formulas as one would write them directly ──

HOUSING = np.array([[100, 80, 60, 35], [10, 5, 4, 3]], dtype=float) * WAN
SALARY_RATE = np.array([0.70, 0.60, 0.50])
SALARY_CAP = np.array([[100, 60, 40], [50, 30, 15]], dtype=float) * WAN
YOUTH = np.array([1.05, 1.0])


def hand_numpy(x: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    return {
        RULES[0]: HOUSING[x["option"], x["tier4"]],
        RULES[1]: np.minimum(SALARY_RATE[x["tier3"]] * x["salary"], SALARY_CAP[x["term"], x["tier3"]])
        * YOUTH[x["age_band"]],
        RULES[2]: np.minimum(0.20 * np.maximum(x["salary"] - 30 * WAN, 0.0), 10 * WAN),
    }


# ── fiscal_sim: the catalogue's programs, compiled ──


def fiscal_sim_rules(interpreted: bool = False) -> Callable[[dict[str, np.ndarray]], dict[str, np.ndarray]]:
    """The compiled programs (``interpreted``: the tree interpreter used before compilation, for comparison)."""
    from fiscal_sim.catalogue.loader import load_catalogue
    from fiscal_sim.rules.formula import evaluate

    cat = load_catalogue(REPO / "scenarios")
    progs = [cat.get(r) for r in RULES]
    names = [
        {"tier": "tier4", "option": "option"},
        {"tier": "tier3", "term": "term", "salary": "salary", "age_band": "age_band"},
        {"salary": "salary"},
    ]

    def run(x: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        n = x["salary"].size
        ctxs = [p.context({k: x[v] for k, v in m.items()}, n) for p, m in zip(progs, names)]
        if interpreted:
            return {p.id: evaluate(p.spec.formula, c) for p, c in zip(progs, ctxs)}
        return {p.id: p.award_cny(c) for p, c in zip(progs, ctxs)}

    return run


# ── OpenFisca-Core (optional) ──


def openfisca_rules() -> Callable[[dict[str, np.ndarray]], dict[str, np.ndarray]] | None:
    try:
        from openfisca_core.periods import DateUnit
        from openfisca_core.entities import build_entity
        from openfisca_core.simulations import SimulationBuilder
        from openfisca_core.taxbenefitsystems import TaxBenefitSystem
        from openfisca_core.variables import Variable
    except ImportError:
        return None
    Person = build_entity(key="person", plural="persons", label="person", is_person=True)

    def var(name: str, dtype=float, formula=None):
        attrs = {"value_type": dtype, "entity": Person, "definition_period": DateUnit.YEAR, "label": name}
        if formula is not None:
            attrs["formula"] = formula
        return type(name, (Variable,), attrs)

    def housing(p, period):
        return HOUSING[p("option", period).astype(int), p("tier4", period).astype(int)]

    def salary_subsidy(p, period):
        t = p("tier3", period).astype(int)
        return (
            np.minimum(SALARY_RATE[t] * p("salary", period), SALARY_CAP[p("term", period).astype(int), t])
            * YOUTH[p("age_band", period).astype(int)]
        )

    def expert(p, period):
        return np.minimum(0.20 * np.maximum(p("salary", period) - 30 * WAN, 0.0), 10 * WAN)

    tbs = TaxBenefitSystem([Person])
    for name in ("tier4", "option", "tier3", "term", "age_band"):
        tbs.add_variable(var(name, int))
    tbs.add_variable(var("salary"))
    for name, f in zip(("housing", "salary_subsidy", "expert"), (housing, salary_subsidy, expert)):
        tbs.add_variable(var(name, float, f))

    def run(x: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        sim = SimulationBuilder().build_default_simulation(tbs, x["salary"].size)
        for k, v in x.items():
            sim.set_input(k, "2025", v)
        return {
            r: np.asarray(sim.calculate(v, "2025"), dtype=float)
            for r, v in zip(RULES, ("housing", "salary_subsidy", "expert"))
        }

    return run


def check_identical(ref: dict[str, np.ndarray], got: dict[str, np.ndarray], rtol: float = 0.0) -> None:
    """Raise if any rule's awards differ (exactly, or within ``rtol`` for float32 engines)."""
    for r in RULES:
        if rtol:
            np.testing.assert_allclose(got[r], ref[r], rtol=rtol, err_msg=r)
        else:
            np.testing.assert_array_equal(got[r], ref[r], err_msg=r)


def time_it(f: Callable, x: dict, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        f(x)
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[1_000_000, 5_000_000])
    ap.add_argument("--repeats", type=int, default=5)
    a = ap.parse_args(argv)
    engines: dict[str, Callable] = {
        "hand numpy": hand_numpy,
        "fiscal_sim": fiscal_sim_rules(),
        "fiscal_sim interp.": fiscal_sim_rules(interpreted=True),
    }
    of = openfisca_rules()
    if of is not None:
        engines["OpenFisca-Core"] = of
    else:
        print("OpenFisca-Core is not installed: skipped (pip install openfisca-core)")
    worst = 0.0
    for n in a.sizes:
        x = talent_inputs(n)
        ref = hand_numpy(x)
        check_identical(ref, engines["fiscal_sim"](x))
        check_identical(ref, engines["fiscal_sim interp."](x))
        if of is not None:
            check_identical(ref, of(x), rtol=1e-6)  # OpenFisca stores floats as float32
        rate = {k: n / time_it(f, x, a.repeats) for k, f in engines.items()}
        ratio = rate["hand numpy"] / rate["fiscal_sim"]
        worst = max(worst, ratio)
        print(f"{n:>10,} applicants × 3 rules, awards identical; persons per second (median of {a.repeats}):")
        for k, v in rate.items():
            print(f"    {k:<18} {v / 1e6:8.1f} M/s   ({rate['hand numpy'] / v:.2f}× hand numpy's time)")
    print(f"fiscal_sim / hand numpy: worst {worst:.2f}× (target ≤ 1.5×) — {'met' if worst <= 1.5 else 'NOT met'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
