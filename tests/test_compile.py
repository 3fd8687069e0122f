"""Compiled formulas (rules/compile.py) give bit-identical awards to the interpreter and to hand-written numpy."""

from __future__ import annotations

import importlib.util
import pickle

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.testing import assert_array_equal
from pydantic import TypeAdapter

from fiscal_sim.rules.compile import compile_formula
from fiscal_sim.rules.formula import EvalContext, Formula, evaluate

from tests.conftest import REPO

formula = TypeAdapter(Formula).validate_python


def random_inputs(prog, n: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Inputs for every declared input: codes, money in yuan (some below thresholds), shares beyond 0–1."""
    out = {}
    for name, spec in prog.spec.inputs.items():
        if spec.type == "category":
            out[name] = rng.integers(0, len(spec.values), n)
        elif spec.type == "share":
            out[name] = rng.uniform(-0.2, 1.2, n)
        else:
            out[name] = (
                prog.money_input_cny(name) * np.exp(rng.normal(3, 1.5, n))
                if spec.type == "money"
                else np.exp(rng.normal(3, 1.5, n))
            )
    return out


def test_every_catalogue_formula_compiles_to_the_interpreters_awards(catalogue):
    rng = np.random.default_rng(1)
    priced = [p for p in catalogue.programs.values() if p.priced]
    assert len(priced) > 40
    for prog in priced:
        x = random_inputs(prog, 500, rng)
        ctx = prog.context(x, 500)
        assert_array_equal(prog.plan(x, 500), evaluate(prog.spec.formula, ctx), err_msg=prog.id)


def test_plan_pickles_twice(catalogue):
    prog = catalogue.get("jwf2017-4.innovation-salary")
    x = random_inputs(prog, 50, np.random.default_rng(2))
    plan = pickle.loads(pickle.dumps(pickle.loads(pickle.dumps(prog.plan))))
    assert_array_equal(plan(x, 50), prog.plan(x, 50))


def test_choice_of_same_shape_options_joins_tables_and_pick_handles_different_shapes():
    cats = {"term": ["long", "short"], "tier": ["A", "B"]}
    same = formula(
        {
            "kind": "choice",
            "by": "term",
            "options": {
                "long": {
                    "kind": "cap",
                    "max": {"by": "tier", "values": {"A": 10, "B": 6}},
                    "of": {"kind": "rate", "rate": 0.5, "base": "s"},
                },
                "short": {
                    "kind": "cap",
                    "max": {"by": "tier", "values": {"A": 5, "B": 3}},
                    "of": {"kind": "rate", "rate": 0.5, "base": "s"},
                },
            },
        }
    )
    plan = compile_formula(same, cats, 1.0)
    assert not any(s[0] == "pick" for s in plan.steps)  # one shape, its cap joined over (term, tier)
    x = {"term": np.array([0, 0, 1, 1]), "tier": np.array([0, 1, 0, 1]), "s": np.array([100.0, 100, 100, 4])}
    assert_array_equal(plan(x, 4), [10, 6, 5, 2])
    mixed = formula(
        {
            "kind": "choice",
            "by": "term",
            "options": {"long": {"kind": "fixed", "amount": 7}, "short": {"kind": "rate", "rate": 0.5, "base": "s"}},
        }
    )
    plan = compile_formula(mixed, cats, 1.0)
    assert any(s[0] == "pick" for s in plan.steps)
    assert_array_equal(plan(x, 4), [7, 7, 50, 2])


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 2**32 - 1), st.floats(0.5, 2.0), st.floats(0, 100), st.sampled_from(["sum", "max"]))
def test_nested_formulas_match_the_interpreter(seed, factor, threshold, combine):
    f = formula(
        {
            "kind": combine,
            "terms": [
                {
                    "kind": "uplift",
                    "factor": factor,
                    "when": {"input": "band", "in": ["young"]},
                    "of": {
                        "kind": "choice",
                        "by": "opt",
                        "options": {
                            "a": {"kind": "tiered", "by": "tier", "amounts": {"A": 5, "B": 3, "C": 1}},
                            "b": {"kind": "floor", "min": 1, "of": {"kind": "up_to", "max": 9, "share": "share"}},
                        },
                    },
                },
                {
                    "kind": "when",
                    "when": {"input": "inv", "gt": threshold},
                    "of": {
                        "kind": "cap",
                        "max": 40,
                        "of": {"kind": "excess", "base": "inv", "threshold": threshold, "rate": 0.2},
                    },
                },
                {"kind": "match", "grant": "grant", "ratio": {"by": "tier", "values": {"A": 1, "B": 0.5, "C": 0.25}}},
            ],
        }
    )
    cats = {"band": ["young", "old"], "opt": ["a", "b"], "tier": ["A", "B", "C"]}
    rng = np.random.default_rng(seed)
    n = 64
    x = {
        "band": rng.integers(0, 2, n),
        "opt": rng.integers(0, 2, n),
        "tier": rng.integers(0, 3, n),
        "share": rng.uniform(-0.5, 1.5, n),
        "inv": rng.uniform(0, 300, n) * 1e4,
        "grant": rng.normal(10, 10, n) * 1e4,
    }
    ctx = EvalContext(n, x, cats, 1e4, money_scale={"inv": 1e4, "grant": 1e4})
    assert_array_equal(compile_formula(f, cats, 1e4, {"inv": 1e4, "grant": 1e4})(x, n), evaluate(f, ctx))


def _bench_rules():
    spec = importlib.util.spec_from_file_location("bench_rules", REPO / "bench" / "rules.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)  # type: ignore[union-attr]
    return mod


def test_rules_benchmark_engines_give_identical_awards():
    """The equality check of bench/rules.py on small arrays (hand numpy vs fiscal_sim, and OpenFisca if installed)."""
    b = _bench_rules()
    x = b.talent_inputs(2_000, seed=3)
    ref = b.hand_numpy(x)
    b.check_identical(ref, b.fiscal_sim_rules()(x))
    # spot checks by hand: a class-A long-term talent aged ≤35 on 200万 → min(140, 100) × 1.05 = 105万
    one = {
        k: np.array([v])
        for k, v in {"tier4": 0, "option": 1, "tier3": 0, "term": 0, "age_band": 0, "salary": 200e4}.items()
    }
    got = b.fiscal_sim_rules()(one)
    assert got[b.RULES[0]][0] == 10e4 and got[b.RULES[1]][0] == 105e4 and got[b.RULES[2]][0] == 10e4
    of = b.openfisca_rules()
    if of is None:
        pytest.skip("OpenFisca-Core not installed (hand numpy and fiscal_sim were compared)")
    b.check_identical(ref, of(x), rtol=1e-6)
