"""The report's charts as PNG bytes (matplotlib, Agg backend, no display needed).

Chinese labels need a font with CJK glyphs; :func:`cjk_font` looks for one
(Debian's ``fonts-noto-cjk`` provides "Noto Sans CJK SC"). Without one, chart
labels fall back to program ids and English names and the tables beside the
charts carry the Chinese titles.
"""

from __future__ import annotations

import io
import re
import textwrap
from functools import lru_cache
from typing import Mapping, Sequence

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib import font_manager  # noqa: E402

from fiscal_sim.report.money import Unit  # noqa: E402

CJK_FAMILIES = (
    "Noto Sans CJK SC",
    "Noto Sans SC",
    "Source Han Sans SC",
    "Source Han Sans CN",
    "WenQuanYi Zen Hei",
    "WenQuanYi Micro Hei",
    "Droid Sans Fallback",
    "SimHei",
    "Microsoft YaHei",
    "PingFang SC",
    "Noto Sans CJK JP",
    "Noto Serif CJK SC",
)
# Colour-blind-safe (blues with Okabe–Ito vermillion and bluish green) and told apart in greyscale: the bands
# and stacked parts step in lightness (light → dark), lines differ in style as well as colour
BAND_OUTER, BAND_INNER = "#c6dbef", "#6baed6"
BLUE, DARK, RED, GREY, GREEN = "#2171b5", "#08306b", "#d55e00", "#737373", "#009e73"
PARTS = ("#d9d9d9", "#969696", "#525252")
LINES = ((DARK, "-", "o"), (RED, "--", "s"), (GREEN, ":", "^"), (GREY, "-.", "D"))
"""several series on one chart: colour, line style and marker all differ"""
"""stacked parts (e.g. existing / new commitments): light, medium and dark grey"""
DPI = 110


FONT_GLOBS = (
    "/usr/share/fonts/**/NotoSansCJK*",
    "/usr/share/fonts/**/NotoSansSC*",
    "/usr/share/fonts/**/wqy*",
    "/usr/share/fonts/**/NotoSerifCJK*",
    "/usr/local/share/fonts/**/*CJK*",
    "/Library/Fonts/*CJK*",
    "C:/Windows/Fonts/msyh*",
)


@lru_cache(maxsize=1)
def cjk_font_file() -> str | None:
    """The first Noto CJK / WenQuanYi font file found on the system, registered with matplotlib (never a stale cache)."""
    import glob

    for pattern in FONT_GLOBS:
        for path in sorted(glob.glob(pattern, recursive=True)):
            if path.lower().endswith((".ttc", ".otf", ".ttf")) and "bold" not in path.lower():
                try:
                    font_manager.fontManager.addfont(path)
                except (OSError, RuntimeError, ValueError):
                    continue
                return path
    return None


@lru_cache(maxsize=1)
def cjk_font() -> str | None:
    """The family name of a CJK font: the registered file's, else the first installed family with CJK glyphs."""
    path = cjk_font_file()
    if path:
        return font_manager.FontProperties(fname=path).get_name()
    installed = {f.name for f in font_manager.fontManager.ttflist}
    return next((f for f in CJK_FAMILIES if f in installed), None)


def style(cjk: bool) -> dict:
    """rcParams for every chart: CJK font first when wanted (DejaVu Sans covers the rest)."""
    family = [cjk_font(), "DejaVu Sans"] if cjk and cjk_font() else ["DejaVu Sans"]
    return {
        "font.family": "sans-serif",
        "font.sans-serif": family,
        "axes.unicode_minus": False,
        "font.size": 9,
        "axes.titlesize": 10,
        "axes.spines.top": False,
        "axes.spines.right": False,
        "axes.grid": True,
        "grid.alpha": 0.3,
    }


UNIT_EN = {"亿元": "100 million CNY (亿元)", "万元": "10,000 CNY (万元)"}
_CJK = re.compile(r"[\u3000-\u303f\u3400-\u9fff\uff00-\uffef]+")


def _t(text: str, cjk: bool) -> str:
    """A chart label: as is with a CJK font; otherwise units spelled out and Chinese removed (the tables keep it)."""
    if cjk:
        return text
    for zh, en in UNIT_EN.items():
        text = text.replace(zh, en.split(" (")[0])
    return re.sub(r"\s{2,}", " ", _CJK.sub(" ", text)).strip(" —·:")


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, bbox_inches="tight", metadata={"Software": None})
    plt.close(fig)
    return buf.getvalue()


def _arr(values: Sequence[float | None], unit: Unit) -> np.ndarray:
    return np.array([np.nan if v is None else v / unit.cny for v in values], float)


def fan_chart(
    years: list[int],
    q: Mapping[str, Sequence[float | None]],
    unit: Unit,
    title: str,
    cjk: bool,
    budget: Sequence[float | None] | None = None,
    reference: Sequence[float | None] | None = None,
    reference_label: str = "baseline mean",
) -> bytes:
    """Bands p05–p95 and p10–p90, median, mean, and the budget line (and a reference mean) by year."""
    with plt.rc_context(style(cjk)):
        fig, ax = plt.subplots(figsize=(6.4, 3.4))
        x = np.array(years)
        ax.fill_between(x, _arr(q["p05"], unit), _arr(q["p95"], unit), color=BAND_OUTER, lw=0, label="P5–P95")
        ax.fill_between(x, _arr(q["p10"], unit), _arr(q["p90"], unit), color=BAND_INNER, lw=0, label="P10–P90")
        ax.plot(x, _arr(q["p50"], unit), color=DARK, lw=1.6, label="median")
        ax.plot(x, _arr(q["mean"], unit), color=DARK, lw=1.2, ls="--", marker="o", ms=3, label="mean")
        if reference is not None:
            ax.plot(x, _arr(reference, unit), color=GREY, lw=1.2, ls=":", marker="s", ms=3, label=reference_label)
        if budget is not None and any(b is not None for b in budget):
            ax.step(x, _arr(budget, unit), where="mid", color=RED, lw=1.5, ls=(0, (5, 2)), label="budget")
        ax.set_title(_t(title, cjk))
        ax.set_ylabel(_t(unit.label, cjk))
        ax.set_xticks(x)
        ax.set_ylim(bottom=min(0.0, float(np.nanmin(_arr(q["p05"], unit)))))
        ax.legend(fontsize=7, ncol=3, loc="upper left", frameon=False)
        return _png(fig)


def bar_chart(
    labels: list[str],
    values: Sequence[float],
    unit: Unit,
    title: str,
    cjk: bool,
    markers: Sequence[float] | None = None,
    marker_label: str = "",
    bar_label: str = "",
) -> bytes:
    """Horizontal bars, largest on top, with an optional marker per bar (e.g. P95 beside the mean)."""
    with plt.rc_context(style(cjk)):
        n = len(labels)
        fig, ax = plt.subplots(figsize=(6.4, 0.8 + 0.32 * max(n, 1)))
        y = np.arange(n)[::-1]
        ax.barh(y, np.asarray(values, float) / unit.cny, color=BLUE, alpha=0.8, label=bar_label or None)
        if markers is not None:
            ax.plot(np.asarray(markers, float) / unit.cny, y, "D", color=RED, ms=4, ls="none", label=marker_label)
        ax.set_yticks(y, [_t(lb, cjk) for lb in labels])
        ax.set_xlabel(_t(unit.label, cjk))
        ax.set_title(_t(title, cjk))
        ax.axvline(0, color="black", lw=0.6)
        if bar_label or markers is not None:
            ax.legend(fontsize=7, loc="lower right", frameon=False)
        return _png(fig)


def exceed_chart(
    years: list[int],
    lines: Sequence[tuple[str, Sequence[float | None], Sequence[float | None], Sequence[float | None]]],
    title: str,
    cjk: bool,
) -> bytes:
    """P(exceed the budget line) by year, one line per budget line, with its 95% interval."""
    with plt.rc_context(style(cjk)):
        fig, ax = plt.subplots(figsize=(6.4, 3.2))
        x = np.array(years, float)
        for i, (label, p, lo, hi) in enumerate(lines):
            pa_, la, ha = (np.array([np.nan if v is None else 100 * v for v in s]) for s in (p, lo, hi))
            off = (i - (len(lines) - 1) / 2) * 0.08
            color, ls, mk = LINES[i % len(LINES)]
            ax.errorbar(
                x + off,
                pa_,
                yerr=[np.clip(pa_ - la, 0, None), np.clip(ha - pa_, 0, None)],
                marker=mk,
                ms=3,
                capsize=2,
                lw=1.2,
                color=color,
                ls=ls,
                label=_t(label, cjk),
            )
        ax.set_ylim(-2, 102)
        ax.set_ylabel("P(exceed) %")
        ax.set_xticks(years)
        ax.set_title(_t(title, cjk))
        ax.legend(fontsize=7, loc="upper left", frameon=False)
        return _png(fig)


def tornado(labels: list[str], low: Sequence[float], high: Sequence[float], unit: Unit, title: str, cjk: bool) -> bytes:
    """Swing of the target from its mean with each parameter in its lowest / highest 10% of draws, first on top."""
    with plt.rc_context(style(cjk)):
        n = len(labels)
        fig, ax = plt.subplots(figsize=(6.4, 0.8 + 0.3 * max(n, 1)))
        y = np.arange(n)[::-1]
        lo, hi = np.asarray(low, float) / unit.cny, np.asarray(high, float) / unit.cny
        ax.barh(y, hi, color=BLUE, alpha=0.85, label="parameter in its highest 10%")
        ax.barh(y, lo, color=RED, alpha=0.85, label="parameter in its lowest 10%")
        ax.set_yticks(y, [_t(lb, cjk) for lb in labels])
        ax.axvline(0, color="black", lw=0.6)
        ax.set_xlabel(_t(f"change from the mean, {unit.label}", cjk))
        ax.set_title(_t(title, cjk))
        ax.legend(fontsize=7, loc="lower right", frameon=False)
        return _png(fig)


def small_multiples(
    years: list[int],
    panels: Sequence[tuple[str, Mapping[str, Sequence[float | None]], Sequence[float | None] | None]],
    unit: Unit,
    cjk: bool,
    columns: int = 4,
) -> bytes:
    """One compact grid: a P5–P95 band, the mean and the budget line per payer, on a shared unit."""
    with plt.rc_context(style(cjk)):
        rows = -(-len(panels) // columns)
        fig, axes = plt.subplots(rows, columns, figsize=(9.6, 2.3 * rows), sharex=True, squeeze=False)
        x = np.array(years)
        for ax, (label, q, budget) in zip(axes.flat, panels):
            ax.fill_between(x, _arr(q["p05"], unit), _arr(q["p95"], unit), color=BAND_OUTER, lw=0)
            ax.plot(x, _arr(q["mean"], unit), color=DARK, lw=1.2)
            if budget is not None and any(b is not None for b in budget):
                ax.step(x, _arr(budget, unit), where="mid", color=RED, lw=1.2, ls=(0, (5, 2)))
            name = re.split(r"\s+(?=[A-Za-z])", label, maxsplit=1)[0] if cjk and _CJK.search(label) else _t(label, cjk)
            ax.set_title(
                textwrap.fill(name, 30), fontsize=8
            )  # the Chinese name alone; a long one wraps, never overlaps
            ax.set_ylim(bottom=0)
            ax.tick_params(labelsize=7)
            ax.set_xticks(x[:: max(1, len(x) // 4)])
        for ax in list(axes.flat)[len(panels) :]:
            ax.set_visible(False)
        fig.supylabel(_t(unit.label, cjk), fontsize=8)
        fig.tight_layout()
        return _png(fig)


def overview(
    years: list[int],
    q: Mapping[str, Sequence[float | None]],
    unit: Unit,
    title: str,
    cjk: bool,
    budget: Sequence[float | None] | None = None,
    parts: Sequence[tuple[str, Sequence[float | None]]] | None = None,
) -> bytes:
    """Total cash by year: P5–P95 band, mean, budget line, and stacked means of its parts (existing vs new)."""
    with plt.rc_context(style(cjk)):
        fig, ax = plt.subplots(figsize=(8.0, 3.6))
        x = np.array(years)
        if parts:
            ax.stackplot(
                x,
                *[_arr(v, unit) for _, v in parts],
                labels=[_t(lb, cjk) for lb, _ in parts],
                colors=list(PARTS[: len(parts)]),
                alpha=0.8,
            )
        ax.fill_between(
            x, _arr(q["p05"], unit), _arr(q["p95"], unit), color=BAND_INNER, alpha=0.35, lw=0, label="P5–P95"
        )
        ax.plot(x, _arr(q["mean"], unit), color=DARK, lw=1.8, marker="o", ms=3, label="mean")
        if budget is not None and any(b is not None for b in budget):
            ax.step(x, _arr(budget, unit), where="mid", color=RED, lw=1.8, ls=(0, (5, 2)), label="budget line")
        ax.set_title(_t(title, cjk))
        ax.set_ylabel(_t(unit.label, cjk))
        ax.set_xticks(x)
        ax.set_ylim(bottom=0)
        ax.legend(fontsize=7, ncol=4, loc="upper left", frameon=False)
        return _png(fig)


def change_chart(
    years: list[int],
    mean: Sequence[float],
    p05: Sequence[float],
    p95: Sequence[float],
    unit: Unit,
    title: str,
    cjk: bool,
) -> bytes:
    """Mean change by year (bars) with the P5–P95 range of the per-draw change (whiskers)."""
    with plt.rc_context(style(cjk)):
        fig, ax = plt.subplots(figsize=(6.4, 3.2))
        m, lo, hi = (np.asarray(v, float) / unit.cny for v in (mean, p05, p95))
        ax.bar(
            years,
            m,
            color=[BLUE if v <= 0 else RED for v in m],
            hatch=None,
            label="mean change",
            edgecolor="black",
            lw=0.4,
        )
        for bar, v in zip(ax.patches, m):  # increases hatched: told apart from decreases in greyscale too
            bar.set_hatch("///" if v > 0 else "")
        ax.errorbar(
            years,
            m,
            yerr=[np.maximum(m - lo, 0), np.maximum(hi - m, 0)],
            fmt="none",
            ecolor="black",
            capsize=3,
            lw=1,
            label="P5–P95 of the change",
        )
        ax.axhline(0, color="black", lw=0.6)
        ax.set_xticks(years)
        ax.set_ylabel(_t(unit.label, cjk))
        ax.set_title(_t(title, cjk))
        ax.legend(fontsize=7, loc="best", frameon=False)
        return _png(fig)
