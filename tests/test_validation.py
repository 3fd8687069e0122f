"""Bad program and case files are rejected with a message naming the file, the program, the field and the line.

Each test writes a bad file into a temporary scenarios folder that holds a copy
of the real ``catalogue/jurisdictions.yaml``, so places and cost-sharing
regimes are checked against the real geography.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from fiscal_sim.cases import load_cases
from fiscal_sim.catalogue.geography import load_geography
from fiscal_sim.catalogue.loader import load_catalogue, load_program_file
from fiscal_sim.errors import InputError, Problem
from fiscal_sim.validate import validate_paths

REPO = Path(__file__).resolve().parents[1]
FISCAL_SIM = str(Path(sys.executable).with_name("fiscal-sim"))

GOOD = textwrap.dedent("""\
    document:
      number: 测试〔2025〕1号
      title: 测试文件
      issuer: 测试单位
      date: 2025-01-01
      unit: 万元
      in_force: {from: 2025-01-01, to: 2027-12-31}
      applies_in: all
      cost_sharing: existing_regime
    programs:
      - id: test.first
        title_zh: 首次认定奖励
        title_en: first certification reward
        source: {section: 一, quote: 给予每家20万元奖励}
        formula: {kind: fixed, amount: 20}
      - id: test.salary
        title_zh: 引才薪酬补助
        title_en: salary subsidy
        source:
          section: 二（四）
          quote: 按引进人才年薪的50%给予补助
        in_force:
          from: 2025-01-01
          to: 2026-12-31
        applies_in: city_proper
        inputs:
          tier:
            type: category
            values: [A, B]
          salary:
            type: money
            unit: 万元
          age:
            type: number
        formula:
          kind: uplift
          factor: 1.05
          when:
            input: age
            lt: 35
          of:
            kind: cap
            max:
              by: tier
              values:
                A: 100
                B: 60
            of:
              kind: rate
              rate: 0.5
              base: salary
        schedule:
          kind: annual
          years: 5
        caps:
          - per: entity_year
            max: 100
    """)

CASES = textwrap.dedent("""\
    cases:
      - name: B-tier salary of 100
        program: test.salary
        jurisdiction: nanhu
        date: 2025-06-30
        inputs: {tier: B, salary: 100, age: 40}
        expected: {award_wan: 50, total_wan: 250}
      - name: a C-tier talent, a tier the program's table does not have
        program: test.salary
        jurisdiction: nanhu
        date: 2025-06-30
        inputs:
          tier: C
          salary: 100
          age: 40
        expected: {award_wan: 50}
    """)


@pytest.fixture
def root(tmp_path: Path) -> Path:
    (tmp_path / "catalogue").mkdir()
    shutil.copy(REPO / "scenarios" / "catalogue" / "jurisdictions.yaml", tmp_path / "catalogue" / "jurisdictions.yaml")
    (tmp_path / "programs").mkdir()
    return tmp_path


def edit(old: str, new: str, text: str = GOOD) -> str:
    assert text.count(old) == 1, f"{old!r} must occur once in the template"
    return text.replace(old, new)


def line_of(text: str, marker: str) -> int:
    """1-based line of the only line containing ``marker``."""
    hits = [i + 1 for i, ln in enumerate(text.splitlines()) if marker in ln]
    assert len(hits) == 1, f"{marker!r} is on lines {hits}"
    return hits[0]


def write(root: Path, text: str, name: str = "bad.yaml") -> Path:
    path = root / "programs" / name
    path.write_text(text, encoding="utf-8")
    return path


def problems_of(root: Path, path: Path) -> list[Problem]:
    with pytest.raises(InputError) as e:
        load_program_file(path, load_geography(root / "catalogue" / "jurisdictions.yaml"))
    assert e.value.problems
    return e.value.problems


def expect(
    problems: list[Problem], path: Path, program: str | None, field: str, line: int | None, message: str
) -> Problem:
    """The problem at ``field`` names the file, the program, the line, and says ``message``."""
    found = [p for p in problems if p.field == field]
    assert found, f"no problem at {field}; got:\n" + "\n".join(map(str, problems))
    p = next((p for p in found if message in p.message), None)
    assert p is not None, f"no problem at {field} saying {message!r}; got:\n" + "\n".join(map(str, found))
    assert p.file == str(path)
    assert p.program == program
    assert p.line == line
    text = str(p)
    assert text.startswith(f"{path}:{line}: " if line else f"{path}: ")
    assert field in text and message in text
    if program:
        assert f"program '{program}'" in text
    return p


def test_the_template_is_valid(root):
    path = write(root, GOOD)
    progs = load_program_file(path, load_geography(root / "catalogue" / "jurisdictions.yaml"))
    assert [p.id for p in progs] == ["test.first", "test.salary"]
    assert progs[1].jurisdictions == ["nanhu", "xiuzhou", "jetz"]


# ─────────────────────────────────────────── unknown primitive ───────────────────────────────────────────


def test_unknown_primitive(root):
    text = edit("kind: rate", "kind: percent")
    path = write(root, text)
    expect(
        problems_of(root, path),
        path,
        "test.salary",
        "programs[1].formula.of.of",
        line_of(text, "kind: percent") - 1,
        "'percent'",
    )


def test_unknown_primitive_at_the_top_of_a_formula(root):
    text = edit("formula: {kind: fixed, amount: 20}", "formula: {kind: fixd, amount: 20}")
    path = write(root, text)
    p = expect(
        problems_of(root, path), path, "test.first", "programs[0].formula", line_of(text, "kind: fixd"), "'fixd'"
    )
    assert "'fixed'" in p.message  # lists the known kinds


def test_unknown_primitive_as_the_base_of_a_rate(root):
    # the tag of a rate node is also the name of its field 'rate': the path must still say 'base'
    text = edit("base: salary", "base: {kind: bogus}")
    path = write(root, text)
    expect(
        problems_of(root, path),
        path,
        "test.salary",
        "programs[1].formula.of.of.base",
        line_of(text, "kind: bogus"),
        "'bogus'",
    )


def test_unknown_schedule_kind(root):
    text = edit("kind: annual", "kind: monthly")
    path = write(root, text)
    expect(
        problems_of(root, path), path, "test.salary", "programs[1].schedule", line_of(text, "schedule:"), "'monthly'"
    )


# ─────────────────────────────────────────── missing field ───────────────────────────────────────────


def test_missing_field(root):
    text = edit("    title_en: salary subsidy\n", "")
    path = write(root, text)
    expect(
        problems_of(root, path),
        path,
        "test.salary",
        "programs[1].title_en",
        line_of(text, "- id: test.salary"),
        "required field is missing",
    )


def test_missing_nested_field(root):
    text = edit("      quote: 按引进人才年薪的50%给予补助\n", "")
    path = write(root, text)
    expect(
        problems_of(root, path),
        path,
        "test.salary",
        "programs[1].source.quote",
        line_of(text, "section: 二（四）") - 1,
        "required field is missing",
    )


def test_missing_formula_of_a_priced_program(root):
    text = edit("    formula: {kind: fixed, amount: 20}\n", "")
    path = write(root, text)
    expect(
        problems_of(root, path), path, "test.first", "programs[0]", line_of(text, "- id: test.first"), "needs a formula"
    )


def test_unknown_field_is_named(root):
    text = edit("factor: 1.05", "factr: 1.05")
    path = write(root, text)
    probs = problems_of(root, path)
    expect(probs, path, "test.salary", "programs[1].formula.factr", line_of(text, "factr"), "unknown field")
    expect(
        probs,
        path,
        "test.salary",
        "programs[1].formula.factor",
        line_of(text, "kind: uplift") - 1,
        "required field is missing",
    )


# ─────────────────────────────────────────── negative cap ───────────────────────────────────────────


def test_negative_cap_in_a_tier_table(root):
    text = edit("A: 100", "A: -100")
    path = write(root, text)
    expect(
        problems_of(root, path),
        path,
        "test.salary",
        "programs[1].formula.of.max.values.A",
        line_of(text, "A: -100"),
        "greater than or equal to 0",
    )


def test_negative_per_award_cap(root):
    text = edit("formula: {kind: fixed, amount: 20}", "formula: {kind: cap, max: -10, of: {kind: fixed, amount: 20}}")
    path = write(root, text)
    expect(
        problems_of(root, path),
        path,
        "test.first",
        "programs[0].formula.max",
        line_of(text, "max: -10"),
        "greater than or equal to 0",
    )


def test_negative_aggregate_cap(root):
    text = edit("max: 100", "max: -100")
    path = write(root, text)
    expect(
        problems_of(root, path),
        path,
        "test.salary",
        "programs[1].caps[0].max",
        line_of(text, "max: -100"),
        "greater than or equal to 0",
    )


# ─────────────────────────────────────────── rate above 100% ───────────────────────────────────────────


def test_rate_above_100_percent(root):
    text = edit("rate: 0.5", "rate: 1.5")
    path = write(root, text)
    expect(
        problems_of(root, path),
        path,
        "test.salary",
        "programs[1].formula.of.of.rate",
        line_of(text, "rate: 1.5"),
        "less than or equal to 1",
    )


def test_rate_above_100_percent_in_a_tier_table(root):
    text = edit("rate: 0.5", "rate: {by: tier, values: {A: 0.7, B: 1.2}}")
    path = write(root, text)
    expect(
        problems_of(root, path),
        path,
        "test.salary",
        "programs[1].formula.of.of.rate.values.B",
        line_of(text, "B: 1.2"),
        "less than or equal to 1",
    )


# ─────────────────────────────────────────── tables and tiers ───────────────────────────────────────────


def test_tier_table_missing_a_declared_tier(root):
    text = edit("            B: 60\n", "")
    path = write(root, text)
    expect(
        problems_of(root, path),
        path,
        "test.salary",
        "programs[1].formula.of.max",
        line_of(text, "by: tier") - 1,
        "no value for tier ['B']",
    )


def test_tiered_amounts_missing_a_declared_category(root):
    text = edit(
        "formula: {kind: fixed, amount: 20}",
        "inputs: {level: {type: category, values: [leader, giant]}}\n"
        "    formula: {kind: tiered, by: level, amounts: {leader: 100}}",
    )
    path = write(root, text)
    expect(
        problems_of(root, path),
        path,
        "test.first",
        "programs[0].formula.amounts",
        line_of(text, "kind: tiered"),
        "no value for level ['giant']",
    )


def test_table_by_an_undeclared_input(root):
    text = edit("          by: tier", "          by: grade")
    path = write(root, text)
    expect(
        problems_of(root, path),
        path,
        "test.salary",
        "programs[1].formula.of.max.by",
        line_of(text, "by: grade"),
        "'grade' is not a declared category input",
    )


def test_condition_on_an_undeclared_category_value(root):
    text = edit("      input: age\n        lt: 35", "      input: tier\n        in: [Z]")
    path = write(root, text)
    expect(
        problems_of(root, path),
        path,
        "test.salary",
        "programs[1].formula.when.in",
        line_of(text, "in: [Z]"),
        "['Z'] are not declared values",
    )


def test_gate_on_an_undeclared_category_value(root):
    # the tag of a gate node ('when') is also the name of its condition field
    text = edit(
        "formula: {kind: fixed, amount: 20}",
        "inputs: {level: {type: category, values: [leader, giant]}}\n"
        "    formula: {kind: when, when: {input: level, in: [giant, dwarf]}, of: {kind: fixed, amount: 20}}",
    )
    path = write(root, text)
    expect(
        problems_of(root, path),
        path,
        "test.first",
        "programs[0].formula.when.in",
        line_of(text, "kind: when"),
        "['dwarf'] are not declared values",
    )


def test_gate_with_a_bad_condition(root):
    text = edit(
        "formula: {kind: fixed, amount: 20}",
        "inputs: {invest: {type: money}}\n"
        "    formula: {kind: when, when: {input: invest, gt: 3000, lt: 5000}, of: {kind: fixed, amount: 20}}",
    )
    path = write(root, text)
    expect(
        problems_of(root, path),
        path,
        "test.first",
        "programs[0].formula.when",
        line_of(text, "kind: when"),
        "exactly one of lt, le, gt, ge, in",
    )


def test_formula_using_an_undeclared_input(root):
    text = edit("base: salary", "base: wage")
    path = write(root, text)
    expect(
        problems_of(root, path),
        path,
        "test.salary",
        "programs[1].formula.of.of",
        line_of(text, "base: wage") - 3,
        "'wage', which is not declared",
    )


def test_case_using_a_tier_the_table_does_not_have(root):
    write(root, GOOD, "good.yaml")
    (root / "cases").mkdir()
    case_file = root / "cases" / "salary.yaml"
    case_file.write_text(CASES, encoding="utf-8")
    with pytest.raises(InputError) as e:
        load_cases(case_file, load_catalogue(root))
    expect(
        e.value.problems,
        case_file,
        "test.salary",
        "cases[1].inputs.tier",
        line_of(CASES, "tier: C"),
        "tier='C' is not in the program's table",
    )
    # the same through the validate entry point, which finds the scenarios folder from the file
    with pytest.raises(InputError) as e:
        validate_paths([case_file])
    expect(e.value.problems, case_file, "test.salary", "cases[1].inputs.tier", line_of(CASES, "tier: C"), "tier='C'")


def test_case_with_a_valid_tier_passes(root):
    write(root, GOOD, "good.yaml")
    case_file = root / "cases.yaml"
    case_file.write_text(CASES.split("  - name: a C-tier")[0], encoding="utf-8")
    cases = load_cases(case_file, load_catalogue(root))
    assert [c.name for c in cases] == ["B-tier salary of 100"]


# ─────────────────────────────────────────── dates ───────────────────────────────────────────


def test_dates_reversed(root):
    text = edit("      from: 2025-01-01\n      to: 2026-12-31", "      from: 2026-12-31\n      to: 2025-01-01")
    path = write(root, text)
    expect(
        problems_of(root, path),
        path,
        "test.salary",
        "programs[1].in_force",
        line_of(text, "    in_force:"),
        "in-force dates reversed",
    )


def test_document_dates_reversed(root):
    text = edit("in_force: {from: 2025-01-01, to: 2027-12-31}", "in_force: {from: 2028-01-01, to: 2027-12-31}")
    path = write(root, text)
    # the document's dates belong to no single program
    expect(
        problems_of(root, path), path, None, "document.in_force", line_of(text, "from: 2028"), "in-force dates reversed"
    )


# ─────────────────────────────────────────── places and payers ───────────────────────────────────────────


def test_unknown_jurisdiction(root):
    text = edit("applies_in: city_proper", "applies_in: [nanhu, atlantis]")
    path = write(root, text)
    p = expect(
        problems_of(root, path),
        path,
        "test.salary",
        "programs[1].applies_in",
        line_of(text, "atlantis"),
        "unknown jurisdiction or group 'atlantis'",
    )
    assert "haining" in p.message  # lists the known places


def test_unknown_jurisdiction_inherited_from_the_document(root):
    text = edit("applies_in: all", "applies_in: jiaxing_all")
    path = write(root, text)
    probs = problems_of(root, path)
    # test.first inherits it; test.salary overrides it and is fine
    assert [p.program for p in probs] == ["test.first"]
    expect(probs, path, "test.first", "programs[0].applies_in", line_of(text, "- id: test.first"), "'jiaxing_all'")


def test_unknown_cost_sharing_regime(root):
    text = edit("    applies_in: city_proper\n", "    applies_in: city_proper\n    cost_sharing: province_pays\n")
    path = write(root, text)
    expect(
        problems_of(root, path),
        path,
        "test.salary",
        "programs[1].cost_sharing",
        line_of(text, "province_pays"),
        "unknown cost-sharing regime 'province_pays'",
    )


# ─────────────────────────────────────────── wrong type ───────────────────────────────────────────


def test_wrong_type_number(root):
    text = edit("factor: 1.05", "factor: high")
    path = write(root, text)
    expect(
        problems_of(root, path),
        path,
        "test.salary",
        "programs[1].formula.factor",
        line_of(text, "factor: high"),
        "valid number",
    )


def test_wrong_type_schedule_years(root):
    text = edit("years: 5", "years: five")
    path = write(root, text)
    expect(
        problems_of(root, path),
        path,
        "test.salary",
        "programs[1].schedule.years",
        line_of(text, "years: five"),
        "valid integer",
    )


def test_wrong_type_input_type(root):
    text = edit("type: money", "type: integer")
    path = write(root, text)
    expect(
        problems_of(root, path),
        path,
        "test.salary",
        "programs[1].inputs.salary.type",
        line_of(text, "type: integer"),
        "'money', 'category', 'number' or 'share'",
    )


def test_wrong_type_list_expected(root):
    text = edit("values: [A, B]", "values: A")
    path = write(root, text)
    expect(
        problems_of(root, path),
        path,
        "test.salary",
        "programs[1].inputs.tier.values",
        line_of(text, "values: A"),
        "valid list",
    )


def test_wrong_input_kind_for_a_formula(root):
    text = edit("base: salary", "base: tier")
    path = write(root, text)
    expect(
        problems_of(root, path),
        path,
        "test.salary",
        "programs[1].formula.of.of",
        line_of(text, "base: tier") - 3,
        "input 'tier' is category, expected money",
    )


# ─────────────────────────────────────────── schedules ───────────────────────────────────────────


def test_instalments_not_summing_to_one(root):
    text = edit("      kind: annual\n      years: 5", "      kind: instalments\n      fractions: [0.4, 0.3, 0.2]")
    path = write(root, text)
    p = expect(
        problems_of(root, path),
        path,
        "test.salary",
        "programs[1].schedule",
        line_of(text, "schedule:"),
        "must sum to 1",
    )
    assert "0.9" in p.message


def test_schedule_years_table_missing_a_tier(root):
    text = edit("years: 5", "years: {by: tier, values: {A: 5}}")
    path = write(root, text)
    expect(
        problems_of(root, path),
        path,
        "test.salary",
        "programs[1].schedule.years",
        line_of(text, "values: {A: 5}"),
        "no value for tier ['B']",
    )


# ─────────────────────────────────────────── invalid YAML ───────────────────────────────────────────


def test_invalid_yaml_names_the_line(root):
    text = edit("    title_zh: 引才薪酬补助", "    title_zh: 引才: 薪酬补助")
    path = write(root, text)
    probs = problems_of(root, path)
    assert len(probs) == 1
    # the parser stops before any program exists: no program id to name, but the file and line are given
    expect(probs, path, None, "-", line_of(text, "引才: 薪酬"), "invalid YAML")


def test_invalid_yaml_unclosed_bracket(root):
    text = edit("values: [A, B]", "values: [A, B")
    path = write(root, text)
    (p,) = problems_of(root, path)
    assert p.file == str(path) and "invalid YAML" in p.message
    assert p.line is not None and line_of(text, "values: [A, B") <= p.line <= line_of(text, "values: [A, B") + 2


def test_not_a_mapping(root):
    path = write(root, "- just\n- a list\n")
    (p,) = problems_of(root, path)
    assert p.file == str(path) and "mapping" in p.message


def test_unsafe_yaml_tags_are_refused(root):
    text = edit("title_en: salary subsidy", "title_en: !!python/object/apply:os.system ['echo hi']")
    path = write(root, text)
    (p,) = problems_of(root, path)
    assert "invalid YAML" in p.message and p.line == line_of(text, "python/object")


def test_duplicate_key_is_not_silently_dropped(root):
    # YAML keeps the last of two equal keys: the first rate would vanish without a word
    text = edit("          rate: 0.5\n", "          rate: 0.5\n          rate: 0.05\n")
    path = write(root, text)
    (p,) = problems_of(root, path)
    expect([p], path, "test.salary", "programs[1].formula.of.of.rate", line_of(text, "rate: 0.05"), "duplicate key")


def test_yaml_anchors_and_aliases_are_allowed(root):
    text = edit("formula: {kind: fixed, amount: 20}", "formula: &twenty {kind: fixed, amount: 20}")
    text = edit("base: salary", "base: *twenty", text)
    path = write(root, text)
    progs = load_program_file(path, load_geography(root / "catalogue" / "jurisdictions.yaml"))
    assert progs[1].spec.formula.of.of.base == progs[0].spec.formula


# ─────────────────────────────────────────── several problems ───────────────────────────────────────────


def test_all_problems_of_a_file_are_reported_together(root):
    text = edit(
        "rate: 0.5", "rate: 1.5", edit("formula: {kind: fixed, amount: 20}", "formula: {kind: fixed, amount: -20}")
    )
    path = write(root, text)
    probs = problems_of(root, path)
    assert {p.program for p in probs} == {"test.first", "test.salary"}
    expect(
        probs, path, "test.first", "programs[0].formula.amount", line_of(text, "amount: -20"), "greater than or equal"
    )
    expect(
        probs, path, "test.salary", "programs[1].formula.of.of.rate", line_of(text, "rate: 1.5"), "less than or equal"
    )


def test_duplicate_program_id_across_files(root):
    write(root, GOOD, "a.yaml")
    b = write(root, GOOD, "b.yaml")
    with pytest.raises(InputError) as e:
        load_catalogue(root)
    dup = [p for p in e.value.problems if "duplicate program id" in p.message]
    assert {p.program for p in dup} == {"test.first", "test.salary"}
    assert all(p.file == str(b) and p.field == "id" for p in dup)


# ─────────────────────────────────────────── fiscal-sim validate ───────────────────────────────────────────


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([FISCAL_SIM, *args], capture_output=True, text=True, timeout=60, cwd=REPO)


def test_cli_validate_rejects_a_bad_file(root):
    text = edit("rate: 0.5", "rate: 1.5")
    path = write(root, text)
    r = run_cli("validate", str(path))
    assert r.returncode != 0
    line = line_of(text, "rate: 1.5")
    assert f"{path}:{line}: program 'test.salary': programs[1].formula.of.of.rate:" in r.stderr
    assert "less than or equal to 1" in r.stderr
    assert "all valid" not in r.stdout


def test_cli_validate_folder_with_one_bad_file(root):
    write(root, GOOD, "good.yaml")
    write(root, edit("applies_in: city_proper", "applies_in: atlantis"), "bad.yaml")
    r = run_cli("validate", str(root / "programs"))
    assert r.returncode != 0
    assert "bad.yaml" in r.stderr and "'atlantis'" in r.stderr and "good.yaml" not in r.stderr


def test_cli_validate_good_file(root):
    path = write(root, GOOD, "good.yaml")
    r = run_cli("validate", str(path))
    assert r.returncode == 0, r.stderr
    assert "2 program(s) ok" in r.stdout and "all valid" in r.stdout


def test_cli_validate_the_scenarios_folder():
    r = run_cli("validate", "scenarios/")
    assert r.returncode == 0, r.stderr
    assert "all valid" in r.stdout


def test_cli_validate_missing_path(tmp_path):
    r = run_cli("validate", str(tmp_path / "nope.yaml"))
    assert r.returncode != 0 and "no such file" in r.stderr
