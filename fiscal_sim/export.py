"""A run folder for spreadsheet users: an Excel workbook (openpyxl) and CSV files.

A run's workbook opens on the headline as numbers and holds payer × year sheets of mean and of P90 cash in
万元 (totals marked in an ``is_total`` column, so a filtered SUM never double counts), every budget line's
P(exceed) by year, the top programs and the run's assumptions; a compare or sweep folder gets its own small
workbook. Every text cell is neutralised against formula injection (:func:`safe`). CSV files are the run's
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

WAN_FMT, PCT_FMT = "#,##0.00", "0.0%"
TABLES = (
    "summary",
    "programs",
    "payers",
    "jurisdictions",
    "cost_shares",
    "pipeline_summary",
    "sensitivity",
    "compare",
    "sweep",
    "points",
)
TOP = 20
CREATOR = "fiscal-sim"
FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "\0")
"""a text starting so is read as a formula by spreadsheets (OWASP CSV injection; ASVS 5.0 1.2.10 adds NUL):
written with a leading '"""
_FORMULA_RE = "^[" + "".join(f"\\x{ord(c):02x}" for c in FORMULA_START) + "]"


def safe(value: Any) -> Any:
    """A cell value that never executes: text starting with ``= + - @``, tab, CR or NUL gets a leading ``'``
    (OWASP); numbers, dates and None are left as they are."""
    return "'" + value if isinstance(value, str) and value.startswith(FORMULA_START) else value


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
    if not path.is_file():
        return []
    try:
        return pq.read_table(path).to_pylist()
    except (OSError, ValueError) as e:  # pyarrow.ArrowInvalid is a ValueError: a truncated or foreign file
        raise FiscalSimError(
            f"{path}: not a readable Parquet file ({' '.join(str(e).split())[:160]}); "
            "run the command that wrote it again"
        ) from None


def kind_of(folder: Path) -> str:
    """``run``, ``compare`` or ``sweep``: what the folder's manifest says it is (a clear error otherwise)."""
    try:
        m = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        m = None
    main = {"run": "summary", "compare": "compare", "sweep": "sweep"}
    kind = (m or {}).get("kind", "run") if isinstance(m, dict) else "run"
    if m is None or kind not in main or not (folder / f"{main[kind]}.parquet").is_file():
        raise FiscalSimError(
            f"{folder} is not a run folder (no summary.parquet and manifest.json), nor a compare "
            "or sweep folder: give a folder written by `fiscal-sim run`, `compare` or `sweep`"
        )
    return kind


def check_run_folder(folder: Path) -> None:
    kind_of(folder)


def _sheet(
    wb,
    title: str,
    header: list[str],
    rows: list[list[Any]],
    formats: dict[int, str] | None = None,
    widths: dict[int, int] | None = None,
):
    """A sheet with a bold header and an auto-filter on it; every text cell neutralised (:func:`safe`)."""
    from openpyxl.styles import Font

    ws = wb.create_sheet(title)
    ws.append([safe(h) for h in header])
    for c in ws[1]:
        c.font = Font(bold=True)
    for r in rows:
        ws.append([safe(v) for v in r])
    for col, fmt in (formats or {}).items():
        for cell in ws.iter_cols(min_col=col, max_col=col, min_row=2):
            for c in cell:
                c.number_format = fmt
    for col, w in (widths or {}).items():
        ws.column_dimensions[ws.cell(1, col).column_letter].width = w
    ws.freeze_panes = "B2"
    if rows:
        ws.auto_filter.ref = ws.dimensions
    return ws


def _wan(cny: float | None) -> float | None:
    return None if cny is None else round(cny / 1e4, 2)


def _headline_sheet(wb, h: dict[str, Any]) -> None:
    """The headline as numbers: grant cash over the horizon per payer, then each budget line's worst year;
    ``row`` says total or member so a filter (and a SUM of members) never double counts."""
    wb.remove(wb.active)  # the headline is the first sheet
    rows = [
        [
            "payer",
            p["payer"],
            p["name_zh"],
            p["name_en"],
            "total" if p["payer"] == hl.ALL else "member",
            _wan(p["mean_cny"]),
            _wan(p["p90_cny"]),
            _wan(p["mcse_cny"]),
            None,
            None,
            None,
            None,
        ]
        for p in h["payers"]
    ]
    rows += [
        [
            "budget line",
            b["payer"],
            b["label_zh"],
            b["label_en"],
            "line",
            _wan(b["budget_cny"]),
            None,
            None,
            b["worst_year"],
            b["p_exceed"],
            b["p_exceed_lo"],
            b["p_exceed_hi"],
        ]
        for b in h["budget_lines"]
    ]
    _sheet(
        wb,
        "Headline 结论",
        [
            "what 项目",
            "payer 财政",
            "名称",
            "name",
            "row (total/member/line)",
            "mean or budget (万元)",
            "P90 (万元)",
            "MC error (万元)",
            "worst year 最高风险年",
            "P(exceed)",
            "95% lower",
            "95% upper",
        ],
        rows,
        {6: WAN_FMT, 7: WAN_FMT, 8: WAN_FMT, 10: PCT_FMT, 11: PCT_FMT, 12: PCT_FMT},
        {3: 28, 4: 30},
    )
    notes = wb.create_sheet("Headline text 结论文字")
    notes.column_dimensions["A"].width = 110
    for line in h["text"]["zh"] + [""] + h["text"]["en"]:
        notes.append([safe(line)])


def run_workbook(folder: Path):
    """The workbook of a run folder (openpyxl ``Workbook``)."""
    from openpyxl import Workbook

    h = hl.load(folder)
    summary = [r for r in _rows(folder, "summary") if r.get("vintage") in (None, "ALL")]
    programs = {r["program"]: r for r in _rows(folder, "programs")}
    payers = {r["payer"]: r for r in _rows(folder, "payers")}
    manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    wb = Workbook()
    wb.properties.creator = CREATOR
    _headline_sheet(wb, h)

    years = sorted({r["fiscal_year"] for r in summary if r["period"] == "year"})
    cash = {(r["payer"], r["fiscal_year"]): r for r in summary if r["program"] == hl.ALL and r["measure"] == "cash"}
    order = [p["payer"] for p in h["payers"]]
    n = len(years) + 1
    for stat, col in (("mean", "mean_cny"), ("P90", "p90_cny")):
        rows = []
        for p in order:
            zh, en = hl.payer_names(payers, p)
            rows.append(
                [p, zh, en, p == hl.ALL]
                + [_wan(cash.get((p, y), {}).get(col)) for y in years]
                + [_wan(cash.get((p, None), {}).get(col))]
            )
        _sheet(
            wb,
            f"Cash {stat} 现金{'均值' if stat == 'mean' else 'P90'} (万元)",
            ["payer", "财政", "name", "is_total (filter FALSE before SUM)"]
            + [str(y) for y in years]
            + ["horizon 合计"],
            rows,
            {c: WAN_FMT for c in range(5, 5 + n)},
            {2: 16, 3: 28, 4: 14},
        )

    rows = []
    sources = {f"{b['payer']}/{b['program']}": b.get("source") for b in manifest.get("budgets") or []}
    for b in h["budget_lines"]:
        basis = b.get("basis", "illustrative")
        said = (
            (sources.get(f"{b['payer']}/{b['program']}") or "")
            if basis == "document"
            else "illustrative: a yardstick, not an appropriation 示意线，非预算安排"
        )
        for y in b["years"]:
            rows.append(
                [
                    b["program"],
                    b["payer"],
                    b["measure"],
                    b["label_zh"],
                    basis,
                    said,
                    y["fiscal_year"],
                    _wan(y["budget_cny"]),
                    y["p_exceed"],
                    y["p_exceed_lo"],
                    y["p_exceed_hi"],
                    _wan(y["overrun_if_exceeded_cny"]),
                ]
            )
    _sheet(
        wb,
        "Budget lines 超预算概率",
        [
            "program",
            "payer",
            "measure",
            "预算线",
            "basis 依据",
            "source 出处",
            "fiscal year",
            "budget (万元)",
            "P(exceed)",
            "95% lower",
            "95% upper",
            "overrun if exceeded (万元)",
        ],
        rows,
        {8: WAN_FMT, 9: PCT_FMT, 10: PCT_FMT, 11: PCT_FMT, 12: WAN_FMT},
        {1: 34, 4: 30, 6: 40},
    )

    progs = sorted(
        (
            r
            for r in summary
            if r["program"] not in (hl.ALL, hl.ALL_EQUITY)
            and r["payer"] == hl.ALL
            and r["measure"] == "cash"
            and r["period"] == "horizon"
        ),
        key=lambda r: -r["mean_cny"],
    )[:TOP]
    rows = [
        [
            r["program"],
            programs.get(r["program"], {}).get("title_zh"),
            programs.get(r["program"], {}).get("title_en"),
            programs.get(r["program"], {}).get("document_number"),
            _wan(r["mean_cny"]),
            _wan(r["p90_cny"]),
            _wan(r["p95_cny"]),
        ]
        for r in progs
    ]
    _sheet(
        wb,
        "Top programs 主要项目 (万元)",
        ["program", "名称", "title", "文号", "mean (万元)", "P90 (万元)", "P95 (万元)"],
        rows,
        {5: WAN_FMT, 6: WAN_FMT, 7: WAN_FMT},
        {1: 40, 2: 40, 3: 50, 4: 22},
    )

    sc = manifest.get("scenario", {})
    rows = [
        ["scenario", sc.get("name")],
        ["scenario file", sc.get("path")],
        ["scenario sha256", sc.get("sha256")],
        ["horizon", f"{manifest.get('horizon', {}).get('start')}–{manifest.get('horizon', {}).get('end')}"],
        ["draws", manifest.get("draws")],
        ["seed", manifest.get("seed_entropy")],
        ["quantiles", manifest.get("quantile_method")],
        ["money", "万元 in this workbook; yuan in the Parquet files"],
        ["run id", manifest.get("run_id")],
        ["engine version", manifest.get("engine_version")],
        ["policy basis", sc.get("policy_basis")],
        [
            "existing book",
            ("SYNTHETIC register (illustrative rows): " if (manifest.get("commitments") or {}).get("synthetic") else "")
            + str((manifest.get("commitments") or {}).get("path") or "no register"),
        ],
        [],
        [
            "program",
            "uptake basis (target: a number in a document; assumption: a labelled assumption)",
            "cost sharing",
            "status",
            "existing book from synthetic rows",
        ],
    ]
    rows += [
        [
            p["program"],
            p.get("uptake_basis"),
            p.get("cost_sharing"),
            p.get("status"),
            "SYNTHETIC" if p.get("synthetic_rows") else None,
        ]
        for p in programs.values()
        if not p.get("is_total")
    ]
    _sheet(wb, "Assumptions 假设", ["item", "value", "", "", ""], rows, widths={1: 40, 2: 60, 3: 24})
    return wb


def compare_workbook(folder: Path):
    """A comparison's workbook: the change of grant cash (all programs) by payer and year, with its error."""
    from openpyxl import Workbook

    wb = Workbook()
    wb.properties.creator = CREATOR
    wb.remove(wb.active)
    rows = sorted(
        (r for r in _rows(folder, "compare") if r["program"] == hl.ALL and r["measure"] == "cash"),
        key=lambda r: (r["payer"] != hl.ALL, r["payer"], r["period"] != "horizon", r["fiscal_year"] or 0),
    )
    _sheet(
        wb,
        "Change 变化 (万元)",
        [
            "payer",
            "is_total (filter FALSE before SUM)",
            "period",
            "fiscal year",
            "baseline mean (万元)",
            "reform mean (万元)",
            "change (万元)",
            "change se (万元)",
            "baseline P(exceed)",
            "reform P(exceed)",
        ],
        [
            [
                r["payer"],
                r["payer"] == hl.ALL,
                r["period"],
                r["fiscal_year"],
                _wan(r["baseline_mean_cny"]),
                _wan(r["reform_mean_cny"]),
                _wan(r["change_mean_cny"]),
                _wan(r["change_se_cny"]),
                r["baseline_p_exceed"],
                r["reform_p_exceed"],
            ]
            for r in rows
        ],
        {5: WAN_FMT, 6: WAN_FMT, 7: WAN_FMT, 8: WAN_FMT, 9: PCT_FMT, 10: PCT_FMT},
        {1: 14, 2: 14},
    )
    return wb


def sweep_workbook(folder: Path):
    """A sweep's workbook: per point, the swept values and each payer's horizon grant cash (mean, P95)."""
    from openpyxl import Workbook

    wb = Workbook()
    wb.properties.creator = CREATOR
    wb.remove(wb.active)
    params = [n for n in pq.read_schema(folder / "points.parquet").names if n != "point"]
    rows = [
        r
        for r in _rows(folder, "sweep")
        if r["program"] == hl.ALL and r["vintage"] == hl.ALL and r["measure"] == "cash" and r["period"] == "horizon"
    ]
    rows.sort(key=lambda r: (r["point"], r["payer"] != hl.ALL, r["payer"]))
    k = len(params)
    _sheet(
        wb,
        "Points 参数点 (万元)",
        ["point", *params, "payer", "is_total (filter FALSE before SUM)", "horizon mean (万元)", "horizon P95 (万元)"],
        [
            [
                r["point"],
                *[r[p] for p in params],
                r["payer"],
                r["payer"] == hl.ALL,
                _wan(r["mean_cny"]),
                _wan(r["p95_cny"]),
            ]
            for r in rows
        ],
        {k + 4: WAN_FMT, k + 5: WAN_FMT},
        {k + 3: 14},
    )
    return wb


def workbook(folder: Path):
    """The workbook of a run, compare or sweep folder (openpyxl ``Workbook``)."""
    return {"run": run_workbook, "compare": compare_workbook, "sweep": sweep_workbook}[kind_of(folder)](folder)


def write_xlsx(folder: Path | str, target: Path | str) -> Path:
    """Write the workbook of ``folder`` to ``target`` (through a temporary file: never half a workbook)."""
    folder, target = Path(folder), Path(target)
    if target.exists() and not _ours(target):
        raise FiscalSimError(
            f"{target} exists and is not a workbook fiscal-sim wrote: not replacing it "
            "(choose another file name or remove it yourself)"
        )
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


def neutralised(table: pa.Table) -> pa.Table:
    """Every text column with :func:`safe` applied (vectorised); other columns untouched."""
    import pyarrow.compute as pc

    cols = []
    for c in table.columns:
        if pa.types.is_string(c.type) or pa.types.is_large_string(c.type):
            risky = pc.fill_null(pc.match_substring_regex(c, _FORMULA_RE), False)
            c = pc.if_else(risky, pc.binary_join_element_wise(pa.scalar("'"), c, ""), c)
        cols.append(c)
    return pa.table(cols, names=table.column_names)


def write_csv(folder: Path | str, target: Path | str) -> list[Path]:
    """Every Parquet table of the run folder as ``<name>.csv`` (UTF-8 with BOM) in ``target``."""
    import pyarrow.csv as pcsv

    from fiscal_sim.io.outdir import check_target, replace_dir

    folder, target = Path(folder), Path(target)
    check_target(target, "export", [folder])
    check_run_folder(folder)
    names = [n for n in TABLES if (folder / f"{n}.parquet").is_file()]
    tables = {}
    for n in names:
        try:
            tables[n] = neutralised(plain(pq.read_table(folder / f"{n}.parquet")))
        except (OSError, ValueError) as e:
            raise FiscalSimError(
                f"{folder / f'{n}.parquet'}: not a readable Parquet file "
                f"({' '.join(str(e).split())[:160]}); run the command that wrote it again"
            ) from None
    with replace_dir(target, "export", [folder]) as tmp:
        for n, table in tables.items():
            with open(tmp / f"{n}.csv", "wb") as f:
                f.write("\ufeff".encode("utf-8"))
                pcsv.write_csv(table, f)
    return [target / f"{n}.csv" for n in names]
