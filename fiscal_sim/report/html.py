"""One self-contained HTML page: inline CSS, images as base64 PNG, no scripts, no network."""

from __future__ import annotations

import base64
from html import escape

from fiscal_sim.report.sections import Chart, Section, Table

CSS = """
body{font-family:"Noto Sans CJK SC","Source Han Sans SC","PingFang SC","Microsoft YaHei",system-ui,sans-serif;
margin:0;color:#1a202c;background:#f7fafc;font-size:14px;line-height:1.45}
header{background:#1a365d;color:#fff;padding:18px 28px}
header h1{margin:0 0 6px;font-size:22px}
header p{margin:2px 0;opacity:.9}
main{padding:10px 28px 40px}
nav{margin:12px 0;font-size:13px}
nav a{margin-right:14px;color:#2b6cb0}
section{background:#fff;border:1px solid #e2e8f0;border-radius:6px;padding:14px 18px;margin:18px 0}
section h2{margin:0 0 6px;font-size:18px;color:#1a365d}
.intro{color:#4a5568;margin:4px 0 12px}
.chart-row{display:flex;flex-wrap:wrap;gap:18px;align-items:flex-start;border-top:1px solid #edf2f7;padding-top:12px;
margin-top:12px}
figure{margin:0;flex:0 1 700px}
figure img{max-width:100%;height:auto;display:block}
figcaption{font-size:12px;color:#4a5568}
.table-wrap{flex:1 1 420px;overflow-x:auto}
table{border-collapse:collapse;font-size:12px;width:100%}
caption{caption-side:bottom;text-align:left;color:#718096;font-size:11px;padding-top:4px}
th,td{border-bottom:1px solid #e2e8f0;padding:3px 6px;vertical-align:top}
th{background:#edf2f7;text-align:left;font-weight:600}
.chart-row.wide figure{flex:0 1 620px}
.chart-row.wide .table-wrap{flex:1 1 820px}
table.programs td:nth-child(2){min-width:10em}
table.programs td:nth-child(3){min-width:12em}
table.programs td:nth-child(4){min-width:15em}
table.programs td:nth-child(5){min-width:7em}
td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
dl.meta{display:grid;grid-template-columns:max-content 1fr;gap:2px 14px;font-size:12px;margin:0}
dl.meta dt{color:#718096}
footer{color:#718096;font-size:11px;padding:0 28px 24px}
"""


def data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def table_html(t: Table, chart_id: str | None = None) -> str:
    attr = f' data-chart="{escape(chart_id)}"' if chart_id else ""
    classes = " ".join(["data"] + ([t.css] if t.css else []))
    head = "".join(f"<th>{escape(c)}</th>" for c in t.columns)
    num = ' class="num"'
    body = "".join("<tr>" + "".join(f"<td{'' if i < t.text_columns else num}>{escape(v)}</td>"
                                    for i, v in enumerate(row)) + "</tr>" for row in t.rows)
    cap = f"<caption>{escape(t.caption)}</caption>" if t.caption else ""
    return f'<table class="{classes}"{attr}>{cap}<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def chart_html(c: Chart) -> str:
    wide = " wide" if c.table.css == "programs" else ""
    return (f'<div class="chart-row{wide}" id="chart-{escape(c.id)}">'
            f'<figure><img src="{data_uri(c.png)}" alt="{escape(c.alt or c.title)}" data-chart="{escape(c.id)}">'
            f"<figcaption>{escape(c.title)}</figcaption></figure>"
            f'<div class="table-wrap">{table_html(c.table, c.id)}</div></div>')


def section_html(s: Section) -> str:
    parts = [f'<section id="{escape(s.id)}"><h2>{escape(s.title)}</h2>']
    if s.intro:
        parts.append(f'<p class="intro">{escape(s.intro)}</p>')
    parts += [f'<div class="table-wrap">{table_html(t)}</div>' for t in s.tables]
    parts += [chart_html(c) for c in s.charts]
    parts.append("</section>")
    return "".join(parts)


def page(title: str, subtitle: list[str], meta: list[tuple[str, str]], sections: list[Section], footer: str,
         extra_html: str = "") -> str:
    nav = "".join(f'<a href="#{escape(s.id)}">{escape(s.title)}</a>' for s in sections)
    dl = "".join(f"<dt>{escape(k)}</dt><dd>{escape(v)}</dd>" for k, v in meta)
    subs = "".join(f"<p>{escape(x)}</p>" for x in subtitle)
    body = "".join(section_html(s) for s in sections)
    return (f'<!DOCTYPE html>\n<html lang="zh-CN"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>{escape(title)}</title><style>{CSS}</style></head>"
            f"<body><header><h1>{escape(title)}</h1>{subs}</header><main><nav>{nav}</nav>"
            f'<section id="run"><h2>Run 运行信息</h2><dl class="meta">{dl}</dl></section>{body}{extra_html}</main>'
            f"<footer>{escape(footer)}</footer></body></html>\n")
