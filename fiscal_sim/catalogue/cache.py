"""A compiled catalogue cached on disk, keyed by the hash of its files and fiscal_sim's version.

One-shot commands (``calc``, ``programs list``) load the catalogue from the cache when no catalogue file
changed since it was written, skipping YAML parsing and validation; any change (a file edited, added or
removed, another fiscal_sim version) gives another key, so a stale catalogue is never used. The cache
lives in ``$FISCAL_SIM_CACHE`` or ``$XDG_CACHE_HOME/fiscal_sim`` (default ``~/.cache/fiscal_sim``);
``FISCAL_SIM_CACHE=off`` disables it.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import uuid
from pathlib import Path

from fiscal_sim.version import __version__
from fiscal_sim.catalogue.loader import (
    DEFAULT_ROOT,
    GEOGRAPHY_FILE,
    PROGRAM_DIR,
    Catalogue,
    load_catalogue,
    program_files,
)


def cache_dir() -> Path | None:
    env = os.environ.get("FISCAL_SIM_CACHE")
    if env == "off":
        return None
    if env:
        return Path(env)
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "fiscal_sim"


def key(root: Path) -> str:
    """Hash of fiscal_sim's version and every catalogue file (path and bytes), in name order."""
    h = hashlib.sha256(__version__.encode())
    # every file the catalogue reads: programs/*.yaml and catalogue/*.yaml (jurisdictions, timeline, …)
    for f in sorted(program_files(root / PROGRAM_DIR) + list((root / GEOGRAPHY_FILE).parent.glob("*.yaml"))):
        h.update(str(f.resolve()).encode() + b"\0" + f.read_bytes())
    return h.hexdigest()[:32]


def cached_catalogue(root: Path | str | None = None) -> Catalogue:
    """``load_catalogue(root)``, from the cache when its files are unchanged (written there otherwise)."""
    root = Path(root) if root else DEFAULT_ROOT
    folder = cache_dir()
    if folder is None or not (root / GEOGRAPHY_FILE).is_file():
        return load_catalogue(root)
    path = folder / f"catalogue-{key(root)}.pickle"
    try:
        with open(path, "rb") as f:
            cat = pickle.load(f)
        if isinstance(cat, Catalogue):
            return cat
    except Exception:  # absent, unreadable or from an incompatible build: load from the files
        pass
    cat = load_catalogue(root)  # raises on bad input, so only valid catalogues are cached
    tmp = folder / f".{path.name}.tmp-{uuid.uuid4().hex[:8]}"  # written whole, then renamed: readers never see half
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with open(tmp, "wb") as f:
            pickle.dump(cat, f, protocol=pickle.HIGHEST_PROTOCOL)
        os.replace(tmp, path)
    except Exception:  # a read-only or full disk, an unpicklable value: run without the cache
        tmp.unlink(missing_ok=True)  # our own temporary file, if it was created
    return cat
