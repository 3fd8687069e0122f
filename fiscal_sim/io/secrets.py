"""One rule for credentials in URLs: :func:`mask` hides them in any text before it is printed or written.

Covers every form pyarrow's ``FileSystem.from_uri`` takes: user info ``KEY:SECRET@`` (also when the secret holds
``/``, ``+``, ``=`` or percent-escapes, which a URL parser would split at the first ``/``) and query options that
carry a credential (``secret_key``, ``access_key``, ``session_token``, ``account_key``, SAS tokens, passwords …).
"""

from __future__ import annotations

import re
from typing import Iterable

MASK = "***"

_URL = re.compile(r'(?P<scheme>[A-Za-z][A-Za-z0-9+.\-]*://)(?P<rest>[^\s"<>]*)')
_SECRET_OPTION = re.compile(r"(?i)(secret|key|token|password|passwd|credential|signature|sig|sas|auth)")


def _mask_url(scheme: str, rest: str) -> str:
    head, q, query = rest.partition("?")
    at = head.rfind("@")
    # user info: an '@' before the first '/', or 'KEY:SECRET@' whose secret holds '/' (a ':' before the '@')
    if at >= 0 and ("/" not in head[:at] or ":" in head[:at]):
        head = f"{MASK}@{head[at + 1 :]}"
    if q:
        opts = []
        for opt in query.split("&"):
            name, eq, _ = opt.partition("=")
            opts.append(f"{name}={MASK}" if eq and _SECRET_OPTION.search(name) else opt)
        query = "&".join(opts)
    return scheme + head + q + query


def mask(text: str) -> str:
    """``text`` with the credentials of every URL in it replaced by ``***`` (text without a URL is unchanged)."""
    if "://" not in text:
        return text
    return _URL.sub(lambda m: _mask_url(m["scheme"], m["rest"]), text)


def mask_all(args: Iterable[str]) -> list[str]:
    """A command line with every argument masked (for manifests and logs)."""
    return [mask(str(a)) for a in args]
