"""A run folder for spreadsheet users: an Excel workbook (openpyxl) and CSV files.

The workbook opens on the headline and holds a payer × year pivot of mean and P90 cash in 万元, every
budget line's P(exceed) by year, the top programs and the run's assumptions. CSV files are the run's
Parquet tables as UTF-8 with a byte-order mark (Excel then reads the Chinese labels correctly).
"""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from fiscal_sim import headline as hl
from fiscal_sim.errors import FiscalSimError

WAN_FMT, PCT_FMT = "#,##0", "0.0%"
TABLES = ("summary", "programs", "payers", "jurisdictions", "cost_shares", "pipeline_summary", "sensitivity")
TOP = 20
CREATOR = "fiscal-sim"


def _ours(path: Path) -> bool:
    """An existing workbook fiscal_sim wrote (its document properties name fiscal-sim as creator)."""
    import zipfile

    try:
        with zipfile.ZipFile(path) as z:
            return f"<dc:creator>{CREATOR}</dc:creator>" in z.read("docProps/core.xml").decode("utf-8")
    except (OSError, KeyError, zipfile.BadZipFile):
        return False


def _rows(folder: Path, name: str) -> list[dict[str, Any]]:
    path = folder / f"{name}.parquet"
    return pq.read_table(path).to_pylist() if path.is_file() else []


def check_run_folder(folder: Path) -> None:
    if not (folder / "summary.parquet").is_file() or not (folder / "manifest.json").is_file():
        raise FiscalSimError(f"{folder} is not a run folder (no summary.parquet and manifest.json): "
                             "give a folder written by `fiscal-sim run`")


def _sheet(wb, title: str, header: list[str], rows: list[list[Any]], formats: dict[int, str] | None = None,
           widths: dict[int, int] | None = None):
    from openpyxl.styles import Font

    ws = wb.create_sheet(title)
    ws.append(header)
    for c in ws[1]:
        c.font = Font(bold=True)
    for r in rows:
        ws.append(r)
    for col, fmt in (formats or {}).items():
        for cell in ws.iter_cols(min_col=col, max_col=col, min_row=2):
            for c in cell:
                c.number_format = fmt
    for col, w in (widths or {}).items():
        ws.column_dimensions[ws.cell(1, col).column_letter].width = w
    ws.freeze_panes = "B2"
    return ws


def _wan(cny: float | None) -> float | None:
    return None if cny is None else round(cny / 1e4, 2)


def workbook(folder: Path):
    """The workbook of a run folder (openpyxl ``Workbook``)."""
    from openpyxl import Workbook
    from openpyxl.styles import Font

    check_run_folder(folder)
    h = hl.load(folder)
    summary = [r for r in _rows(folder, "summary") if r.get("vintage") in (None, "ALL")]
    programs = {r["program"]: r for r in _rows(folder, "programs")}
    payers = {r["payer"]: r for r in _rows(folder, "payers")}
    manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    wb = Workbook()
    wb.properties.creator = CREATOR
    ws = wb.active
    ws.title = "Headline 结论"
    ws.column_dimensions["A"].width = 110
    for i, line in enumerate(h["text"]["zh"] + [""] + h["text"]["en"], 1):
        ws.cell(i, 1, line).font = Font(bold=i in (1, len(h["text"]["zh"]) + 2))

    years = sorted({r["fiscal_year"] for r in summary if r["period"] == "year"})
    cash = {(r["payer"], r["fiscal_year"]): r for r in summary if r["program"] == hl.ALL and r["measure"] == "cash"}
    order = [p["payer"] for p in h["payers"]]
    rows = []
    for stat, col in (("mean", "mean_cny"), ("P90", "p90_cny")):
        for p in order:
            zh, en = hl.payer_names(payers, p)
            rows.append([p, zh, en, stat] + [_wan(cash.get((p, y), {}).get(col)) for y in years]
                        + [_wan(cash.get((p, None), {}).get(col))])
    n = len(years) + 1
    _sheet(wb, "Cash by payer 分财政 (万元)", ["payer", "财政", "name", "statistic"] + [str(y) for y in years]
           + ["horizon 合计"], rows, {c: WAN_FMT for c in range(5, 5 + n)}, {2: 16, 3: 28})

    rows = []
    for b in h["budget_lines"]:
        for y in b["years"]:
            rows.append([b["program"], b["payer"], b["measure"], b["label_zh"], y["fiscal_year"], _wan(y["budget_cny"]),
                         y["p_exceed"], y["p_exceed_lo"], y["p_exceed_hi"], _wan(y["overrun_if_exceeded_cny"])])
    _sheet(wb, "Budget lines 超预算概率", ["program", "payer", "measure", "预算线", "fiscal year", "budget (万元)",
                                         "P(exceed)", "95% lower", "95% upper", "overrun if exceeded (万元)"],
           rows, {6: WAN_FMT, 7: PCT_FMT, 8: PCT_FMT, 9: PCT_FMT, 10: WAN_FMT}, {1: 34, 4: 30})

    progs = sorted((r for r in summary if r["program"] not in (hl.ALL, hl.ALL_EQUITY) and r["payer"] == hl.ALL
                    and r["measure"] == "cash" and r["period"] == "horizon"), key=lambda r: -r["mean_cny"])[:TOP]
    rows = [[r["program"], programs.get(r["program"], {}).get("title_zh"), programs.get(r["program"], {}).get("title_en"),
             programs.get(r["program"], {}).get("document_number"), _wan(r["mean_cny"]), _wan(r["p90_cny"]),
             _wan(r["p95_cny"])] for r in progs]
    _sheet(wb, "Top programs 主要项目 (万元)", ["program", "名称", "title", "文号", "mean", "P90", "P95"], rows,
           {5: WAN_FMT, 6: WAN_FMT, 7: WAN_FMT}, {1: 40, 2: 40, 3: 50, 4: 22})

    sc = manifest.get("scenario", {})
    rows = [["scenario", sc.get("name")], ["scenario file", sc.get("path")], ["scenario sha256", sc.get("sha256")],
            ["horizon", f"{manifest.get('horizon', {}).get('start')}–{manifest.get('horizon', {}).get('end')}"],
            ["draws", manifest.get("draws")], ["seed", manifest.get("seed_entropy")],
            ["quantiles", manifest.get("quantile_method")], ["money", "万元 in this workbook; yuan in the Parquet files"],
            ["run id", manifest.get("run_id")], ["engine version", manifest.get("engine_version")], [], 
            ["program", "uptake basis (target: a number in a document; assumption: a labelled assumption)",
             "cost sharing", "status"]]
    rows += [[p["program"], p.get("uptake_basis"), p.get("cost_sharing"), p.get("status")]
             for p in programs.values() if not p.get("is_total")]
    _sheet(wb, "Assumptions 假设", ["item", "value", "", ""], rows, widths={1: 40, 2: 60, 3: 24})
    return wb


def write_xlsx(folder: Path | str, target: Path | str) -> Path:
    """Write the workbook of ``folder`` to ``target`` (through a temporary file: never half a workbook)."""
    folder, target = Path(folder), Path(target)
    if target.exists() and not _ours(target):
        raise FiscalSimError(f"{target} exists and is not a workbook fiscal-sim wrote: not replacing it "
                             "(choose another file name or remove it yourself)")
    wb = workbook(folder)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.parent / f".{target.name}.tmp-{uuid.uuid4().hex[:8]}.xlsx"
    try:
        wb.save(tmp)
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
    return target


def plain(table: pa.Table) -> pa.Table:
    """Dictionary columns as plain values (CSV writers want them so)."""
    cols = [c.cast(c.type.value_type) if pa.types.is_dictionary(c.type) else c for c in table.columns]
    return pa.table(cols, names=table.column_names)


def write_csv(folder: Path | str, target: Path | str) -> list[Path]:
    """Every Parquet table of the run folder as ``<name>.csv`` (UTF-8 with BOM) in ``target``."""
    import pyarrow.csv as pcsv

    from fiscal_sim.io.outdir import check_target, replace_dir

    folder, target = Path(folder), Path(target)
    check_target(target, "export", [folder])
    check_run_folder(folder)
    names = [n for n in TABLES if (folder / f"{n}.parquet").is_file()]
    with replace_dir(target, "export", [folder]) as tmp:
        for n in names:
            with open(tmp / f"{n}.csv", "wb") as f:
                f.write("\ufeff".encode("utf-8"))
                pcsv.write_csv(plain(pq.read_table(folder / f"{n}.parquet")), f)
    return [target / f"{n}.csv" for n in names]
