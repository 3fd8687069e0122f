"""The ``fiscal-sim`` command line, run as a subprocess."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
FISCAL_SIM = str(Path(sys.executable).with_name("fiscal-sim"))
INTERMEDIARY = "jzbf2024-7.tech-intermediary-reward"


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([FISCAL_SIM, *args], capture_output=True, text=True, timeout=60, cwd=REPO)


def calc_json(*args: str) -> dict:
    r = run("calc", *args, "--json")
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


# ─────────────────────────────────────────── calc ───────────────────────────────────────────


def test_calc_explain_cites_the_clauses():
    # 域外专家: 20% × (60 − 30) = 6万元 a year (under the 10万元 cap), for 3 years
    r = run(
        "calc",
        "jwf2017-4.overseas-expert",
        "--input",
        "salary=60",
        "--jurisdiction",
        "nanhu",
        "--date",
        "2025-03-01",
        "--explain",
    )
    assert r.returncode == 0, r.stderr
    out = r.stdout
    assert "jwf2017-4.overseas-expert" in out and "“域外专家”计划年薪补助" in out
    assert "嘉委发〔2017〕4号 二（七）" in out
    assert "「实际支付人才年薪达到30万元及以上的，财政按年薪超出30万元部分的20%」" in out
    assert "「最高不超过10万元」" in out
    assert "20.00% × (salary 60万元 − threshold 30万元) = 6万元" in out
    assert "capped at 10万元 → 6万元" in out
    assert "award: 6万元" in out and "total commitment: 18万元 (180,000.00 元)" in out
    for year in (2026, 2027, 2028):  # paid from t+1 (catalogue timing)
        assert re.search(rf"│ {year}\s+│ 6万元\s+│ 3万元\s+│ 3万元\s+│", out), out
    assert "2029" not in out


def test_calc_without_explain_has_no_steps():
    r = run("calc", "jwf2017-4.overseas-expert", "-i", "salary=60", "-j", "nanhu", "--date", "2025-03-01")
    assert r.returncode == 0, r.stderr
    assert "「" not in r.stdout and "award: 6万元" in r.stdout


def test_calc_json_total_schedule_and_payers():
    # A-tier long-term innovation salary: 70% × 200 = 140 → capped at 100万元 a year for 5 years
    # dated before 星耀南湖 replaces it (2024-04-01): afterwards calc says so and pays nothing
    res = calc_json(
        "jwf2017-4.innovation-salary",
        "-i",
        "tier=A",
        "-i",
        "term=long",
        "-i",
        "salary=200",
        "-j",
        "nanhu",
        "--date",
        "2023-03-01",
    )
    assert res["program"] == "jwf2017-4.innovation-salary"
    assert res["award_cny"] == 1_000_000
    assert res["total_cny"] == 5_000_000
    assert res["in_force"] is True and res["jurisdiction"] == "nanhu"
    # paid from t+1 (catalogue timing, lag 1), as the simulation pays it
    assert [(s["year_offset"], s["fiscal_year"], s["cash_cny"]) for s in res["schedule"]] == [
        (k + 1, 2024 + k, 1_000_000) for k in range(5)
    ]
    assert all(s["payers_cny"] == {"city": 500_000, "nanhu": 500_000} for s in res["schedule"])
    assert res["payers"] == {"city": 2_500_000, "nanhu": 2_500_000}
    steps = {s["step"]: s for s in res["steps"]}
    assert steps["cap"]["clause"] == "属于长期项目的每年最高补助不超过100万元、60万元、40万元"
    assert steps["cap"]["value_cny"] == 1_000_000
    assert steps["rate"]["value_cny"] == 1_400_000


def test_calc_same_award_split_by_jurisdiction():
    # applies everywhere: 50/50 city/district in Nanhu, 100% local in Haining
    nanhu = calc_json(INTERMEDIARY, "-i", "contract=500", "-j", "nanhu", "--date", "2025-05-01")
    haining = calc_json(INTERMEDIARY, "-i", "contract=500", "-j", "haining", "--date", "2025-05-01")
    assert nanhu["total_cny"] == haining["total_cny"] == 100_000  # 3% × 500 = 15 → capped at 10万元
    assert nanhu["payers"] == {"city": 50_000, "nanhu": 50_000}
    assert haining["payers"] == {"haining": 100_000}
    assert haining["schedule"] == [
        {"year_offset": 1, "fiscal_year": 2026, "cash_cny": 100_000, "payers_cny": {"haining": 100_000}}
    ]


def test_calc_money_with_explicit_unit_and_used_cap():
    # 300万元 given in yuan; 95万元 of the intermediary's 100万元 already used this year → 5 of the 9
    res = calc_json(
        INTERMEDIARY, "-i", "contract=3000000元", "-i", "used_entity_year=95", "-j", "jiashan", "--date", "2025-05-01"
    )
    assert res["award_cny"] == pytest.approx(50_000)
    assert res["steps"][0]["value_cny"] == pytest.approx(90_000)
    assert any("already used 95万元" in n for n in res["notes"])


def test_calc_outside_in_force_dates_is_not_payable():
    res = calc_json(INTERMEDIARY, "-i", "contract=200", "-j", "haining", "--date", "2027-02-01")
    assert res["in_force"] is False and res["total_cny"] == 0 and res["schedule"] == []
    assert any("not payable" in n for n in res["notes"])


def test_calc_non_cumulation_group():
    # dated before 星耀南湖 replaces the 精英引领计划 grants (2024-04-01)
    res = calc_json(
        "jwf2017-4.elite-venture",
        "jwf2017-4.hi-talent-venture",
        "-i",
        "tier=B",
        "-i",
        "level=provincial",
        "-j",
        "nanhu",
        "--date",
        "2023-03-01",
    )
    assert [(r["program"], r["total_cny"], r["winner"]) for r in res] == [
        ("jwf2017-4.elite-venture", 3_000_000, True),
        ("jwf2017-4.hi-talent-venture", 2_000_000, False),
    ]


# ─────────────────────────────────────────── errors ───────────────────────────────────────────


def test_unknown_program():
    r = run("calc", "jzbf2024-7.no-such-program", "-i", "contract=200")
    assert r.returncode != 0
    assert "jzbf2024-7.no-such-program" in r.stderr and "unknown program" in r.stderr
    assert "Traceback" not in r.stderr
    r = run("programs", "show", "jzbf2024-7.tech-intermediary")
    assert r.returncode != 0
    assert "unknown program" in r.stderr and f"did you mean {INTERMEDIARY}" in r.stderr


@pytest.mark.parametrize(
    "inputs, named, says",
    [
        (["contract=abc"], "inputs.contract", "'abc' is not an amount: write a number in 万元 or a number with a unit"),
        (["contrct=200"], "inputs.contrct", "not an input of this program"),
        ([], "inputs.contract", "required input is missing"),
    ],
)
def test_bad_input_is_named(inputs, named, says):
    args = [a for kv in inputs for a in ("--input", kv)]
    r = run("calc", INTERMEDIARY, *args, "-j", "nanhu", "--date", "2025-05-01")
    assert r.returncode != 0
    assert f"program '{INTERMEDIARY}': {named}: {says}" in r.stderr
    assert "Traceback" not in r.stderr


def test_bad_category_and_typo_in_an_input_with_a_default():
    r = run("calc", "jwf2017-4.elite-venture", "-i", "tier=D", "-j", "nanhu")
    assert r.returncode != 0 and "inputs.tier: 'D' is not one of A, B, C" in r.stderr
    # a mistyped optional input must not silently fall back to its default (no youth uplift)
    r = run("calc", "jwf2017-4.elite-venture", "-i", "tier=A", "-i", "age=upto35", "-j", "nanhu")
    assert r.returncode != 0 and "inputs.age: not an input of this program" in r.stderr


def test_input_without_equals_sign():
    r = run("calc", INTERMEDIARY, "--input", "contract")
    assert r.returncode != 0
    assert "--input" in r.stderr and "expected key=value" in r.stderr


def test_jurisdiction_where_the_program_does_not_apply_and_bad_date():
    r = run("calc", "jwf2017-4.talent-housing", "-i", "tier=provincial", "-i", "option=rent", "-j", "haining")
    assert r.returncode != 0 and "'haining' is not where the program applies" in r.stderr
    r = run("calc", INTERMEDIARY, "-i", "contract=200", "--date", "2025-13-01")
    assert r.returncode != 0 and "Traceback" not in r.stderr


# ─────────────────────────────────────────── programs ───────────────────────────────────────────


def test_programs_list_counts(catalogue):
    r = run("programs", "list")
    assert r.returncode == 0, r.stderr
    counts = Counter(p.spec.status for p in catalogue.programs.values())
    last = r.stdout.strip().splitlines()[-1]
    assert last == (
        f"{len(catalogue.programs)} provisions: {counts['priced']} priced, "
        f"{counts['unpriced']} unpriced, {counts['equity']} equity"
    )
    assert INTERMEDIARY in r.stdout


def test_programs_list_json_and_filters(catalogue):
    r = run("programs", "list", "--json", "--document", "嘉政办发〔2024〕7号", "--kind", "cap")
    assert r.returncode == 0, r.stderr
    rows = json.loads(r.stdout)
    ids = {row["id"] for row in rows}
    assert {INTERMEDIARY, "jzbf2024-7.tech-broker-reward"} <= ids
    assert all(row["document"] == "嘉政办发〔2024〕7号" and "cap" in row["kinds"] for row in rows)


def test_programs_show():
    r = run("programs", "show", INTERMEDIARY)
    assert r.returncode == 0, r.stderr
    out = r.stdout
    assert out.startswith(INTERMEDIARY) and "科技中介服务机构促成技术合同奖励" in out
    assert "嘉政办发〔2024〕7号" in out and "三（三）" in out
    assert "「分别按实际支付技术合同金额的3%和1.5%给予奖励" in out
    assert "in force 2024-04-01 – 2026-12-31" in out
    assert "applies in: nanhu, xiuzhou, jetz, jiashan, haiyan, haining, pinghu, tongxiang, port" in out
    assert "cost sharing: existing_regime" in out
    assert "kind: cap" in out and "per: entity_year" in out
    assert "jiazhengbanfa_2024_7.yaml" in out


@pytest.mark.parametrize(
    "args, says",
    [
        (["run", "no-such-scenario.yaml", "-q"], "no-such-scenario.yaml"),
        (
            ["calc", "jzbf2024-7.tech-intermediary-reward", "-i", "contract=500", "--date", "2025-02-30"],
            "--date 2025-02-30",
        ),
        (["sweep", "scenarios/baseline.yaml", "--set", "programs.no-such.formula.max=1,2"], "no-such"),
    ],
)
def test_the_typer_app_itself_goes_through_the_one_fault_handler(args, says):
    """A test (or a notebook) calling the typer app gets what a user gets: the clear line and its exit code, not
    an exception (the handler is the app's command group, not only the console entry point)."""
    from typer.testing import CliRunner

    from fiscal_sim.cli import app

    r = CliRunner().invoke(app, args)
    assert r.exit_code not in (0, None) and isinstance(r.exception, SystemExit), r.exception
    text = r.output + (r.stderr if r.stderr_bytes is not None else "")
    assert says in text and "Traceback" not in text, text


def test_no_command_catches_faults_itself():
    """One handler: the command modules hold no ``except FiscalSimError``."""
    pkg = Path(__file__).parents[1] / "fiscal_sim" / "cli"
    for f in pkg.glob("*.py"):
        if f.name != "faults.py":
            assert "except FiscalSimError" not in f.read_text(encoding="utf-8"), f.name
