"""Workbench security: loopback unless a token is set, the token on every request, CSRF on every form,
request size limits. Pure ASGI middleware plus one form reader; no secret is ever echoed."""

from __future__ import annotations

import hmac
import ipaddress
import secrets
from typing import Any
from urllib.parse import urlencode

from starlette.datastructures import FormData
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse

from fiscal_sim.errors import FiscalSimError

TOKEN_COOKIE, CSRF_COOKIE, CSRF_FIELD = "fs_token", "fs_csrf", "csrf"
MAX_BODY = 256 * 1024  # a scenario form is a few KB
MAX_UPLOAD = 8 * 1024 * 1024  # a register or award history (…/upload only)
MAX_FIELDS = 1000  # the scenario form: about 300 fields for the baseline


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_binding(host: str, token: str | None) -> None:
    """Any host but loopback needs a token (``--token`` or FISCAL_SIM_TOKEN): refuse to start without one."""
    if not is_loopback(host) and not token:
        raise FiscalSimError(
            f"--host {host} opens the workbench to the network: give --token (or set "
            "FISCAL_SIM_TOKEN) so every request must carry it; not starting"
        )


def _same(a: str | None, b: str | None) -> bool:
    return bool(a) and bool(b) and hmac.compare_digest(str(a).encode(), str(b).encode())


class Guard:
    """ASGI middleware: body size limit, the access token (header, cookie, or ``?token=`` once), CSRF cookie."""

    def __init__(self, app: Any, token: str | None):
        self.app, self.token = app, token

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        req = Request(scope)
        size = req.headers.get("content-length")
        limit = MAX_UPLOAD if req.url.path.endswith("/upload") else MAX_BODY
        if size and (not size.isdigit() or int(size) > limit):
            return await HTMLResponse("request too large", status_code=413)(scope, receive, send)
        if self.token:
            given = (
                req.headers.get("x-fiscal-sim-token")
                or req.headers.get("authorization", "").removeprefix("Bearer ")
                or req.cookies.get(TOKEN_COOKIE)
            )
            query = req.query_params.get("token")
            if _same(query, self.token):  # once: set the cookie and drop the token from the address
                params = urlencode([(k, v) for k, v in req.query_params.multi_items() if k != "token"])
                resp = RedirectResponse(req.url.path + (f"?{params}" if params else ""), status_code=303)
                resp.set_cookie(TOKEN_COOKIE, self.token, httponly=True, samesite="strict")
                return await resp(scope, receive, send)
            if not _same(given, self.token):
                return await HTMLResponse("access token required (open the address with ?token=…)", status_code=401)(
                    scope, receive, send
                )
        csrf = req.cookies.get(CSRF_COOKIE)
        scope.setdefault("state", {})["csrf"] = csrf or secrets.token_urlsafe(24)

        async def send_with_cookie(message: dict) -> None:
            if message["type"] == "http.response.start" and not csrf:
                cookie = f"{CSRF_COOKIE}={scope['state']['csrf']}; Path=/; SameSite=Strict; HttpOnly"
                message.setdefault("headers", []).append((b"set-cookie", cookie.encode()))
            await send(message)

        await self.app(scope, receive, send_with_cookie)


async def checked_form(request: Request, files: int = 0) -> FormData:
    """The posted form (with at most ``files`` files), after the double-submit CSRF check (field or
    X-CSRF-Token header = cookie)."""
    part = MAX_UPLOAD if files else 64 * 1024
    form = await request.form(max_files=files, max_fields=MAX_FIELDS, max_part_size=part)
    sent = form.get(CSRF_FIELD) or request.headers.get("x-csrf-token")
    if not _same(str(sent) if sent else None, request.cookies.get(CSRF_COOKIE)):
        raise HTTPException(403, "missing or wrong form token (reload the page and try again)")
    return form
