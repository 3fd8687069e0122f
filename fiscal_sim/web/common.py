"""What every workbench page shares: the template environment, the language, numbers from a form."""

from __future__ import annotations

from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse

from fiscal_sim.web.i18n import LANGS, translator

env = Environment(loader=PackageLoader("fiscal_sim.web", "templates"), autoescape=select_autoescape())


def lang_of(request: Request) -> str:
    lang = request.query_params.get("lang") or request.cookies.get("fs_lang") or "zh"
    return lang if lang in LANGS else "zh"


def page(request: Request, template: str, status: int = 200, **ctx: Any) -> HTMLResponse:
    """Render ``template`` in the request's language, with the CSRF token every form posts back."""
    lang = lang_of(request)
    html = env.get_template(template).render(
        t=translator(lang), lang=lang, csrf=request.scope["state"]["csrf"], path=request.url.path, **ctx
    )
    resp = HTMLResponse(html, status_code=status)
    if request.query_params.get("lang") in LANGS:
        resp.set_cookie("fs_lang", lang, samesite="strict")
    return resp


def whole(text: Any, default: int | None, lo: int, hi: int, label: str) -> int | None:
    """A whole number from a form field within [lo, hi] (``default`` when empty); 422 naming ``label``."""
    if text in (None, ""):
        return default
    if not str(text).strip().isdigit() or not lo <= int(text) <= hi:
        raise HTTPException(422, f"{label}: a whole number from {lo} to {hi:,}")
    return int(text)
