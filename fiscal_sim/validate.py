"""Validate files of any kind the project reads: programs, case files, scenarios, jurisdictions."""

from __future__ import annotations

from pathlib import Path

from fiscal_sim.catalogue.geography import load_geography
from fiscal_sim.catalogue.loader import Catalogue, DEFAULT_ROOT, GEOGRAPHY_FILE, load_catalogue, load_program_file
from fiscal_sim.errors import FiscalSimError, InputError, Problem
from fiscal_sim.yamlfile import YamlDoc


def _kind(path: Path) -> str:
    data = YamlDoc(path).data
    if path.name == "timeline.yaml" and path.parent.name == "catalogue":
        return "timeline"
    if isinstance(data, dict):
        for key, kind in (
            ("document", "program"),
            ("cases", "cases"),
            ("scenario", "scenario"),
            ("jurisdictions", "geography"),
            ("provisions", "provision_map"),
            ("groups", "groups"),
            ("alternatives", "alternatives"),
        ):
            if key in data:
                return kind
    return "unknown"


def _root_for(path: Path, default: Path | None) -> Path:
    """The scenarios folder a file belongs to (holding catalogue/jurisdictions.yaml)."""
    for parent in [path] + list(path.resolve().parents):
        if (parent / GEOGRAPHY_FILE).exists():
            return parent
    return default or DEFAULT_ROOT


def validate_paths(paths: list[Path], root: Path | None = None) -> list[str]:
    """Validate every YAML file under ``paths``; return a line per file, raise with all problems."""
    files: list[Path] = []
    for p in paths:
        if p.is_dir():
            # a register's sidecar (<register>.meta.yaml) is checked with the scenario that loads the register
            files += sorted(
                x for x in p.rglob("*.yaml") if x.name != "README.yaml" and not x.name.endswith(".meta.yaml")
            )
        elif p.exists():
            files.append(p)
        else:
            raise InputError([Problem(str(p), None, "-", "no such file or folder")])
    report, problems = [], []
    catalogues: dict[Path, Catalogue] = {}
    for f in files:
        try:
            kind = _kind(f)
            base = _root_for(f, root)
            if kind == "program":
                progs = load_program_file(f, load_geography(base / GEOGRAPHY_FILE))
                report.append(f"{f}: {len(progs)} program(s) ok")
            elif kind == "provision_map":
                from fiscal_sim.catalogue.provisions import load_provision_map

                if base not in catalogues:
                    catalogues[base] = load_catalogue(base)
                report.append(f"{f}: {len(load_provision_map(f, catalogues[base]))} provision(s) ok")  # type: ignore[arg-type]
            elif kind == "groups":  # checked against the programs that name the groups
                if base not in catalogues:
                    catalogues[base] = load_catalogue(base)
                report.append(f"{f}: {len(catalogues[base].groups)} non-cumulation group(s) ok")
            elif kind == "timeline":
                if base not in catalogues:
                    catalogues[base] = load_catalogue(base)  # the catalogue checks its timeline's references
                report.append(f"{f}: timeline ok")
            elif kind == "alternatives":  # the assumption ledger's: each switched into the folder's baseline
                from fiscal_sim.analysis.assumptions import check_file as check_alternatives

                report.append(f"{f}: {check_alternatives(f, base)} alternative(s) ok")
            elif kind == "geography":
                load_geography(f)
                report.append(f"{f}: jurisdictions ok")
            elif kind in ("cases", "scenario"):
                if base not in catalogues:
                    catalogues[base] = load_catalogue(base)
                cat = catalogues[base]
                if kind == "cases":
                    from fiscal_sim.cases import check_file as check_cases

                    results = check_cases(f, cat)
                    failed = [(c, bad) for c, bad in results if bad]
                    problems += [
                        Problem(str(f), ",".join(c.ids), f"case {c.name!r}", "; ".join(bad)) for c, bad in failed
                    ]
                    if not failed:
                        report.append(f"{f}: {len(results)} case(s) ok")
                else:
                    from fiscal_sim.scenario import load_scenario

                    load_scenario(f, cat)  # type: ignore[arg-type]
                    report.append(f"{f}: scenario ok")
            else:
                problems.append(
                    Problem(
                        str(f),
                        None,
                        "-",
                        "not a program, case, scenario or jurisdictions file "
                        "(expected a top-level 'document', 'cases', 'scenario' or 'jurisdictions')",
                    )
                )
        except InputError as e:
            problems += e.problems
        except FiscalSimError as e:  # one line naming the file (the assumption ledger's alternatives)
            problems.append(Problem(str(f), None, "-", str(e)))
    if problems:
        raise InputError(problems)
    return report
