"""Output folders that can only replace what fiscal_sim wrote.

Every command that writes a folder (``run``, ``compare``, ``sweep``, ``report``,
``sensitivity``) goes through :func:`replace_dir` (or :func:`add_file` for a
file added beside a result). The target, after resolving symlinks, may be
replaced only when it does not exist, is empty, or holds a fiscal_sim result of
the same kind — its ``manifest.json`` says ``kind`` and lists every file written
(``written``) — with nothing else beside it. Protected places are refused
whatever they hold: ``/``, the home folder, the working directory, a mount point,
the folders holding the files being read, and every folder above them. All
checks run before any work starts.

The new result is written into ``.NAME.tmp-*`` beside the target (marked with
:data:`MARKER`, holding the writer's pid) and renamed into place only when
complete; every failure path removes it, and a temporary folder left by a killed
run is removed by the next run into the same place.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import Iterable, Iterator

from fiscal_sim.errors import FiscalSimError, InputError, Interrupted, describe_os_error

MARKER = ".fiscal_sim-partial"
"""File inside a temporary folder: says fiscal_sim made it, and which process."""
MANIFEST = "manifest.json"
KINDS = ("run", "compare", "sweep", "report", "sensitivity", "export", "backtest", "assumptions")
DATASET_FILES = 50
"""a folder of more Parquet parts than this is listed as one entry ``name/`` (manifests stay small)"""
OS_JUNK = {".DS_Store", "Thumbs.db", "desktop.ini"}

# what each kind writes, for results written before manifests listed their files
_LEGACY = {
    "run": re.compile(
        r"^(manifest\.json|summary\.parquet|draws|(programs|payers|jurisdictions|cost_shares)\.parquet|"
        r"pipeline_(draws|summary)\.parquet)$"
    ),
    "compare": re.compile(r"^(manifest\.json|compare\.parquet|compare_draws|baseline|reform)$"),
    "sweep": re.compile(r"^(manifest\.json|sweep\.parquet|points\.parquet|point-0)$"),
    "report": re.compile(r"^(report\.html|\d\d-[\w.-]+\.png)$"),
    "sensitivity": re.compile(r"^(manifest\.json)$"),
    "export": re.compile(r"^[a-z_]+\.csv$"),
    "backtest": re.compile(r"^(manifest\.json|backtest\.(parquet|json|html)|calibration\.yaml|[\w.-]+\.png)$"),
    "assumptions": re.compile(r"^(manifest\.json|assumptions(_budgets)?\.parquet)$"),
}
# what other commands add beside a result: sensitivity.parquet, and a report folder of its own kind
_ADD_ONS = {
    "run": ("sensitivity.parquet", "report", "backtest"),
    "compare": ("sensitivity.parquet", "report"),
    "sensitivity": ("sensitivity.parquet",),
}


class OutputFolderError(FiscalSimError):
    """``--out`` names a place fiscal_sim must not replace."""


def files_under(folder: Path) -> list[str]:
    """Every file below ``folder``, as sorted POSIX paths relative to it."""
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if not p.is_dir())


def read_manifest(folder: Path) -> dict | None:
    try:
        m = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return m if isinstance(m, dict) else None


def kind_of(m: dict) -> str | None:
    """The kind of result a manifest describes (older run manifests carry no ``kind``)."""
    if isinstance(m.get("kind"), str):
        return m["kind"]
    return "run" if "programs_simulated" in m and "compared_in" not in m else None


def foreign_entries(folder: Path, kind: str) -> list[str] | None:
    """Entries of ``folder`` fiscal_sim did not write as a result of ``kind``; None if it is no such result."""
    m = read_manifest(folder)
    if m is None:  # reports and CSV exports written before they carried a manifest
        legacy = (
            (folder / "report.html").is_file()
            if kind == "report"
            else all(_LEGACY["export"].match(p.name) for p in folder.iterdir())
            if kind == "export"
            else False
        )
        if not legacy:
            return None
        m = {"kind": kind}
    if kind_of(m) != kind:
        return None
    written = m.get("written")
    ours = set(written) if isinstance(written, list) else None
    add_ons = _ADD_ONS.get(kind, ())
    foreign = []
    for entry in sorted(folder.iterdir(), key=lambda p: p.name):
        name = entry.name
        if name in OS_JUNK or name == MARKER:
            continue
        if name in add_ons:
            if entry.is_dir() and foreign_entries(entry, name) != []:
                foreign.append(name + "/")
            continue
        if ours is None:
            if not _LEGACY[kind].match(name):
                foreign.append(name)
        elif entry.is_dir() and not entry.is_symlink() and name + "/" in ours:  # a dataset of Parquet parts
            foreign += [f"{name}/{f}" for f in files_under(entry) if not f.endswith(".parquet")]
        elif entry.is_dir() and not entry.is_symlink():
            foreign += [f"{name}/{f}" for f in files_under(entry) if f"{name}/{f}" not in ours]
        elif name not in ours:
            foreign.append(name)
    return foreign


def _describe(folder: Path) -> str:
    names = sorted(p.name for p in folder.iterdir())
    return ", ".join(names[:6]) + (f", … ({len(names)} entries)" if len(names) > 6 else "")


def _protected(target: Path, inputs: Iterable[Path]) -> str | None:
    """Why ``target`` (resolved) must never be replaced, or None."""

    def at_or_above(p: Path) -> bool:
        return target == p or target in p.parents

    if target == Path(target.anchor):
        return "is the root folder"
    home = Path.home().resolve()
    if at_or_above(home):
        return "is your home folder" if target == home else f"holds your home folder {home}"
    cwd = Path.cwd().resolve()
    if at_or_above(cwd):
        return "is the working directory" if target == cwd else f"holds the working directory {cwd}"
    for f in inputs:
        f = Path(f).resolve()
        if f.is_dir() and target == f:
            return "is the folder this command reads"
        if at_or_above(f if f.is_dir() else f.parent):
            return f"holds {f}, which this command reads"
    if target.is_dir() and os.path.ismount(target):
        return "is a mount point"
    return None


def check_target(target: Path | str, kind: str, inputs: Iterable[Path | str] = ()) -> Path:
    """The resolved folder ``target`` names, if a result of ``kind`` may be written there; else raise."""
    assert kind in KINDS, kind
    given = Path(target)
    final = given.expanduser().resolve()
    shown = str(given) if final == given.absolute() else f"{given} (→ {final})"
    why = _protected(final, [Path(i) for i in inputs])
    if why:
        raise OutputFolderError(
            f"--out {shown} {why}: fiscal_sim never replaces it; give a new folder, e.g. --out outputs/<name>"
        )
    if not final.exists():
        return final
    if not final.is_dir():
        raise OutputFolderError(
            f"--out {shown} is a file, not a folder: nothing was changed; give a folder name that does not exist yet"
        )
    if not any(final.iterdir()):
        return final
    foreign = foreign_entries(final, kind)
    if foreign is None:
        m = read_manifest(final)
        what = f"a fiscal_sim {kind_of(m)} result" if m and kind_of(m) else "not a fiscal_sim result"
        raise OutputFolderError(
            f"--out {shown} is {what} (it holds: {_describe(final)}): fiscal_sim only replaces a "
            f"previous {kind} result; give a new or empty folder"
        )
    if foreign:
        shown_files = ", ".join(foreign[:6]) + (f", … ({len(foreign)} files)" if len(foreign) > 6 else "")
        raise OutputFolderError(
            f"--out {shown} holds a previous {kind} result plus files fiscal_sim did not write "
            f"({shown_files}): move them out or give another folder"
        )
    return final


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True
    return True


def _write_marker(folder: Path) -> None:
    (folder / MARKER).write_text(json.dumps({"pid": os.getpid(), "host": socket.gethostname()}), encoding="utf-8")


def _abandoned(folder: Path) -> bool:
    """A temporary folder of fiscal_sim whose writer is gone."""
    try:
        info = json.loads((folder / MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False  # not ours: never touched
    if info.get("host") == socket.gethostname() and info.get("pid") != os.getpid() and _pid_alive(int(info["pid"])):
        return False  # a run in progress
    return True


def sweep_stale(final: Path) -> list[Path]:
    """Remove temporary folders a killed run left beside ``final`` (restore a result caught mid-swap)."""
    done: list[Path] = []
    if not final.parent.is_dir():
        return done
    for p in final.parent.glob(f".{glob_escape(final.name)}.*-*"):
        kind = p.name[len(final.name) + 2 :].split("-", 1)[0]
        if kind not in ("tmp", "old") or not p.is_dir() or not _abandoned(p):
            continue
        if kind == "old" and not final.exists():
            (p / MARKER).unlink()
            os.replace(p, final)  # killed between the two renames: the previous result comes back
        else:
            shutil.rmtree(p)
        done.append(p)
    return done


def glob_escape(name: str) -> str:
    return re.sub(r"([*?\[])", r"[\1]", name)


def written_list(folder: Path) -> list[str]:
    """What a result holds: its files, and a folder holding many Parquet parts as one ``name/`` entry."""
    return collapse([f for f in files_under(folder) if f != MARKER])


def collapse(files: list[str]) -> list[str]:
    """Sorted relative file paths, each top-level folder of many Parquet parts as one ``name/`` entry."""
    tops: dict[str, list[str]] = {}
    for f in sorted(files):
        tops.setdefault(f.split("/", 1)[0], []).append(f)
    out = []
    for top, group in sorted(tops.items()):
        if len(group) > DATASET_FILES and all(f.endswith(".parquet") and "/" in f for f in group):
            group = [top + "/"]
        out += group
    return out


def _finish_manifest(tmp: Path, kind: str) -> None:
    """Record the kind and every file written, so a later run knows what it may replace."""
    m = read_manifest(tmp) or {}
    m.setdefault("kind", kind)
    m["written"] = written_list(tmp) + ([MANIFEST] if not (tmp / MANIFEST).exists() else [])
    (tmp / MANIFEST).write_text(json.dumps(m, ensure_ascii=False, indent=2, default=str) + "\n", encoding="utf-8")


def _make_parents(folder: Path) -> list[Path]:
    """Create ``folder`` and missing parents; return those created (deepest first)."""
    made = []
    p = folder
    while not p.exists():
        made.append(p)
        p = p.parent
    for d in reversed(made):
        d.mkdir()
    return made


def _cleanup(paths: Iterable[Path]) -> None:
    for p in paths:
        if p.is_dir() and not p.is_symlink():
            shutil.rmtree(p, ignore_errors=True)


def _failed(e: BaseException, shown: Path, existed: bool) -> BaseException:
    kept = f"previous result in {shown} kept" if existed else f"{shown} not created"
    if isinstance(e, KeyboardInterrupt):
        return Interrupted(f"interrupted; nothing written; {kept}")
    if isinstance(e, OSError):
        return FiscalSimError(f"writing {shown} failed: {describe_os_error(e)}; nothing written; {kept}")
    if isinstance(e, FiscalSimError) and not isinstance(e, (InputError, OutputFolderError, Interrupted)):
        return type(e)(f"{e}; nothing written; {kept}")
    return e


@contextmanager
def replace_dir(target: Path | str, kind: str, inputs: Iterable[Path | str] = ()) -> Iterator[Path]:
    """Check ``target``, yield a temporary folder beside it, and put it in place when the block succeeds.

    On any failure (exception, Ctrl-C, a failed rename) the temporary folder and
    parents created for it are removed and the previous result stays as it was.
    """
    final = check_target(target, kind, inputs)
    sweep_stale(final)
    made = _make_parents(final.parent)
    existed = final.exists()
    tmp = final.parent / f".{final.name}.tmp-{uuid.uuid4().hex[:8]}"
    old = final.parent / f".{final.name}.old-{uuid.uuid4().hex[:8]}"
    try:
        tmp.mkdir()
        _write_marker(tmp)
        yield tmp
        _finish_manifest(tmp, kind)
        (tmp / MARKER).unlink()
        check_target(target, kind, inputs)  # nothing foreign appeared meanwhile
        if final.exists() and any(final.iterdir()):
            _write_marker(final)
            os.replace(final, old)
            try:
                os.replace(tmp, final)
            except BaseException:
                os.replace(old, final)
                (final / MARKER).unlink(missing_ok=True)
                raise
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, final)
    except BaseException as e:
        _cleanup([tmp])
        for d in made:
            try:
                d.rmdir()
            except OSError:
                break
        new = _failed(e, Path(target), existed)
        if new is e:
            raise
        raise new from None


def _host(target: Path | str, hosts: tuple[str, ...]) -> str | None:
    """The kind of result ``target`` holds, if one of ``hosts``."""
    final = Path(target).expanduser().resolve()
    m = read_manifest(final) if final.is_dir() else None
    host = kind_of(m) if m else None
    return host if host in hosts else None


def check_out(target: Path | str, kind: str, inputs: Iterable[Path | str] = (), hosts: tuple[str, ...] = ()) -> Path:
    """:func:`check_target` for a command about to write ``kind`` (or add a file to a result of ``hosts``)."""
    return check_target(target, _host(target, hosts) or kind, inputs)


@contextmanager
def into_result(
    target: Path | str, kind: str, hosts: tuple[str, ...], inputs: Iterable[Path | str] = ()
) -> Iterator[Path]:
    """A folder to add a file to: ``target`` itself when it is a clean result of one of ``hosts``
    (the caller replaces its one file atomically), else a new result of ``kind`` via :func:`replace_dir`."""
    host = _host(target, hosts)
    if host:
        yield check_target(target, host, inputs)
    else:
        with replace_dir(target, kind, inputs) as tmp:
            yield tmp


def inputs_of(*scenarios) -> list[Path]:
    """The files a command reads for these scenarios: scenario, program, geography and register files."""
    out: list[Path] = []
    for s in scenarios:
        out += [Path(s.path)] + [Path(f) for f in getattr(s, "extends", ())]
        out += [Path(f) for f in s.catalogue.files] + [Path(s.catalogue.geography.path)]
        register = getattr(s, "register", None)
        if register is not None:
            out.append(Path(register.path))
    return out
