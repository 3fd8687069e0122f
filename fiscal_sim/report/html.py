"""One self-contained HTML page from Jinja2 templates (package data): inline CSS, images as base64 PNG, no scripts."""

from __future__ import annotations

import base64
from functools import lru_cache
from importlib import resources

from fiscal_sim.report.sections import Section


def data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


@lru_cache(maxsize=1)
def environment():
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.PackageLoader("fiscal_sim.report", "templates"),
        autoescape=True,
        trim_blocks=True,
        lstrip_blocks=True,
        undefined=jinja2.StrictUndefined,
    )
    env.filters["data_uri"] = data_uri
    return env


def css() -> str:
    return resources.files("fiscal_sim.report").joinpath("templates", "report.css").read_text(encoding="utf-8")


def page(
    title: str,
    subtitle: list[str],
    meta: list[tuple[str, str]],
    sections: list[Section],
    footer: str,
    font_note: str = "",
) -> str:
    """The report: ``sections`` in order (each may name a partial template), technical details (``meta``) last."""
    return (
        environment()
        .get_template("report.html.j2")
        .render(
            title=title, subtitle=subtitle, meta=meta, sections=sections, footer=footer, css=css(), font_note=font_note
        )
        + "\n"
    )
