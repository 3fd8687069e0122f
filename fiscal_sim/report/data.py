"""Read what the report shows: a run folder (or a comparison folder) and its optional sensitivity table."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from fiscal_sim.errors import FiscalSimError

Key = tuple[str, str, str, str, "int | None"]


class NotARunFolder(FiscalSimError):
    """The report was pointed at something that is not a run (or comparison) folder."""


@dataclass
class RunFolder:
    """One run's summary, labels and manifest, with look-ups by series."""

    path: Path
    manifest: dict[str, Any]
    rows: list[dict[str, Any]]
    programs: dict[str, dict[str, Any]]
    payers: dict[str, dict[str, Any]]
    pipeline: list[dict[str, Any]] | None = None
    """rows of pipeline_summary.parquet (runs with --pipeline)"""
    vintage_rows: list[dict[str, Any]] = field(default_factory=list)
    """summary rows split by vintage (``existing`` / ``new``), when the run had a commitment register"""
    index: dict[Key, dict[str, Any]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.index = {(r["program"], r["payer"], r["measure"], r["period"], r["fiscal_year"]): r for r in self.rows}

    @property
    def name(self) -> str:
        return self.manifest.get("scenario", {}).get("name", self.path.name)

    @property
    def vintages(self) -> list[str]:
        return sorted({r["vintage"] for r in self.vintage_rows})

    @property
    def years(self) -> list[int]:
        return sorted({r["fiscal_year"] for r in self.rows if r["period"] == "year"})

    def by_year(self, program: str, payer: str, measure: str) -> list[dict[str, Any]]:
        """The yearly rows of one series, in year order (missing years skipped)."""
        return [self.index[k] for y in self.years if (k := (program, payer, measure, "year", y)) in self.index]

    def horizon(self, program: str, payer: str, measure: str = "cash") -> dict[str, Any] | None:
        return self.index.get((program, payer, measure, "horizon", None))

    def payer_label(self, payer: str, cjk: bool) -> str:
        if payer == "ALL":
            return "全部财政 all payers" if cjk else "all payers"
        p = self.payers.get(payer, {})
        en = p.get("name_en") or payer
        return f"{p.get('name_zh')} {en}" if cjk and p.get("name_zh") else en


@dataclass
class ReportData:
    """Everything one report shows; ``baseline`` and ``compare`` only for a comparison folder."""

    root: Path
    run: RunFolder
    baseline: RunFolder | None = None
    compare: list[dict[str, Any]] | None = None
    compare_manifest: dict[str, Any] | None = None
    sensitivity: list[dict[str, Any]] | None = None
    lang: str = "zh"
    """the language of the headline's text (zh or en)"""

    @property
    def is_compare(self) -> bool:
        return self.compare is not None


def _table(path: Path) -> pa.Table:
    try:
        return pq.read_table(path)
    except Exception as e:  # a truncated or foreign file: say which
        raise NotARunFolder(f"{path}: cannot read Parquet file: {e}") from None


def _by_key(table: pa.Table, key: str) -> dict[str, dict[str, Any]]:
    return {r[key]: r for r in table.to_pylist()}


def load_run(path: Path) -> RunFolder:
    """A folder written by ``fiscal-sim run`` (or a side of a comparison)."""
    need = ["summary.parquet", "manifest.json"]
    missing = [n for n in need if not (path / n).is_file()]
    if missing:
        raise NotARunFolder(f"{path} is not a run folder: no {' and no '.join(missing)}")
    try:
        manifest = json.loads((path / "manifest.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise NotARunFolder(f"{path / 'manifest.json'}: unreadable manifest: {e}") from None
    every = _table(path / "summary.parquet").to_pylist()
    rows = [r for r in every if r.get("vintage", "ALL") == "ALL"]
    if not rows:
        raise NotARunFolder(f"{path / 'summary.parquet'} has no rows: nothing to report")
    programs = _by_key(_table(path / "programs.parquet"), "program") if (path / "programs.parquet").is_file() else {}
    payers = _by_key(_table(path / "payers.parquet"), "payer") if (path / "payers.parquet").is_file() else {}
    split = [r for r in every if r.get("vintage", "ALL") != "ALL" and r["program"] == "ALL" and r["period"] == "year"]
    pipeline = (
        _table(path / "pipeline_summary.parquet").to_pylist() if (path / "pipeline_summary.parquet").is_file() else None
    )
    return RunFolder(path, manifest, rows, programs, payers, pipeline, split)


def load(root: Path | str) -> ReportData:
    """A run folder or a comparison folder; anything else is a clear :class:`NotARunFolder` error."""
    root = Path(root)
    if not root.exists():
        raise NotARunFolder(f"{root}: no such folder")
    if not root.is_dir():
        raise NotARunFolder(f"{root} is a file, not a run folder (give the folder that holds summary.parquet)")
    entries = sorted(p.name for p in root.iterdir() if not p.name.startswith("."))
    if not entries:
        raise NotARunFolder(
            f"{root} is empty: not a run folder (write one with `fiscal-sim run SCENARIO --out {root}`)"
        )
    sens = root / "sensitivity.parquet"
    sensitivity = _table(sens).to_pylist() if sens.is_file() else None
    if (root / "compare.parquet").is_file():
        if not (root / "baseline").is_dir() or not (root / "reform").is_dir():
            raise NotARunFolder(f"{root} has compare.parquet but not its baseline/ and reform/ folders")
        manifest = (
            json.loads((root / "manifest.json").read_text(encoding="utf-8"))
            if (root / "manifest.json").is_file()
            else {}
        )
        return ReportData(
            root,
            load_run(root / "reform"),
            load_run(root / "baseline"),
            _table(root / "compare.parquet").to_pylist(),
            manifest,
            sensitivity,
        )
    if (root / "sweep.parquet").is_file():
        raise NotARunFolder(
            f"{root} is a sweep folder: it holds many runs in sweep.parquet (open it in a BI tool); "
            "report a single run or comparison folder instead"
        )
    if not (root / "summary.parquet").is_file():
        shown = ", ".join(entries[:8]) + (", …" if len(entries) > 8 else "")
        raise NotARunFolder(f"{root} is not a run folder: no summary.parquet (it holds: {shown})")
    return ReportData(root, load_run(root), sensitivity=sensitivity)
