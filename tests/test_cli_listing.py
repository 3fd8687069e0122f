"""CLI listings: whole ids at 80 columns, --format, filters that say when nothing matches, --version."""

from __future__ import annotations

import csv
import io
import json

import pytest
from typer.testing import CliRunner

from fiscal_sim import __version__
from fiscal_sim.cli import app

runner = CliRunner()


def ids(args: list[str]) -> list[str]:
    res = runner.invoke(app, ["programs", "list", *args, "--format", "json"])
    assert res.exit_code == 0, res.output
    return [r["id"] for r in json.loads(res.stdout)]


def test_a_narrow_terminal_shows_every_id_whole():
    every = ids([])
    res = runner.invoke(app, ["programs", "list"], env={"COLUMNS": "80"})
    assert res.exit_code == 0
    assert all(len(line) <= 80 for line in res.stdout.splitlines()[:-1])
    cells = {c.strip() for line in res.stdout.splitlines() for c in line.split("│")}
    assert set(every) <= cells  # each id whole in its own cell, never cut or wrapped


@pytest.mark.parametrize(
    "number", ["嘉政办发〔2024〕7号", "嘉政办发[2024]7号", "嘉政办发（2024）7号", "嘉政办发(2024)7", "jzbf2024-7"]
)
def test_documents_are_found_by_any_bracket_style_and_short_id(number):
    found = ids(["--document", number])
    assert found and all(i.startswith("jzbf2024-7.") for i in found)
    assert set(found) == {i for i in ids([]) if i.startswith("jzbf2024-7.")}


def test_jurisdictions_by_id_or_chinese_name():
    assert ids(["--jurisdiction", "南湖区"]) == ids(["--jurisdiction", "nanhu"])


@pytest.mark.parametrize(
    "args, hint",
    [
        (["--document", "jzbf2024-9"], "did you mean jzbf2024-7"),
        (["--status", "price"], "did you mean priced"),
        (["--jurisdiction", "南湖"], "did you mean 南湖区"),
        (["--kind", "up_too"], "did you mean up_to"),
        (["--document", "jzbf2024-5", "--status", "equity"], "no program matches"),
    ],
)
def test_a_filter_that_matches_nothing_says_so_and_fails(args, hint):
    res = runner.invoke(app, ["programs", "list", *args])
    assert res.exit_code == 1 and hint in res.output, res.output


def test_csv_format_and_version():
    res = runner.invoke(app, ["programs", "list", "--status", "equity", "--format", "csv"])
    rows = list(csv.DictReader(io.StringIO(res.stdout)))
    assert rows and {r["status"] for r in rows} == {"equity"} and "title_en" in rows[0]
    res = runner.invoke(app, ["--version"])
    assert res.exit_code == 0 and __version__ in res.stdout


def test_every_option_has_help_and_every_command_an_example():
    import typer.main

    group = typer.main.get_command(app)

    def commands(g, prefix=""):
        for name, cmd in g.commands.items():
            if hasattr(cmd, "commands"):
                yield from commands(cmd, f"{prefix}{name} ")
            else:
                yield f"{prefix}{name}", cmd

    for name, cmd in commands(group):
        for p in cmd.params:
            if p.param_type_name == "option":
                assert p.help, f"{name} {p.opts[0]} has no help"
        if name not in ("programs list",):  # its examples are in the docstring too
            assert "Example" in (cmd.help or ""), f"`{name}` has no example in its help"


def test_errors_speak_the_users_language(tmp_path):
    res = runner.invoke(app, ["run", "scenarios/baseline.yaml", "--draws", "-5", "--out", str(tmp_path / "x")])
    assert res.exit_code == 1 and "draws: input should be greater than or equal to 1" in res.output
    assert "pydantic" not in res.output and "ValidationError" not in res.output
    res = runner.invoke(
        app,
        ["calc", "jwf2017-4.innovation-salary", "-i", "tier=A", "-i", "term=long", "-i", "salary=200k", "-j", "nanhu"],
    )
    assert res.exit_code == 1 and "inputs.salary: '200k' is not an amount" in res.output and "1.2亿" in res.output
