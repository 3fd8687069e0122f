"""Where a result goes: a local folder, or a prefix on an object store named by a URL.

``--out`` is parsed by :func:`parse`: a plain path or a ``file://`` URI is a
local folder, written exactly as before through
:func:`fiscal_sim.io.outdir.replace_dir` (a temporary folder renamed into place,
with all its refusals); any other URL that
:func:`pyarrow.fs.FileSystem.from_uri` understands (``s3://bucket/prefix``,
with query options such as ``?endpoint_override=HOST:PORT&scheme=http``;
``gs://``, ``hdfs://``, ``abfs://``) is a :class:`Remote` prefix.

Object stores have no rename, so a run there writes everything under a fresh
run-id prefix ``<url>/<run_id>/`` — workers write their per-draw parts
straight into ``draws/`` (they get the URL as a string and open the
filesystem themselves); the client writes its small files (summary, dimension
tables, manifest, headline) — and writes ``<url>/<run_id>/_SUCCESS`` strictly
last, then the pointer ``<url>/LATEST`` to that run. A run that fails leaves
its prefix without ``_SUCCESS`` (readers ignore it) and deletes nothing.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterable, Iterator
from urllib.parse import urlsplit, urlunsplit

from fiscal_sim.errors import FiscalSimError, InputError, Interrupted, describe_os_error
from fiscal_sim.io.secrets import mask, mask_all
from fiscal_sim.io.outdir import MANIFEST, OutputFolderError, check_out, collapse, replace_dir

SUCCESS = "_SUCCESS"
"""written last under a run's prefix: the run is complete (JSON: run id, files written, creation time)"""
LATEST = "LATEST"
"""beside the runs of a prefix, written after a run's ``_SUCCESS``: JSON naming the last complete run"""


URL_SCHEMES = {"s3", "gs", "gcs", "hdfs", "viewfs", "abfs", "abfss", "az", "file", "mock"}
"""schemes pyarrow opens: a value like ``s3:/bucket`` (one slash) is a mistyped URL, never a folder name"""


def shown(uri: str) -> str:
    """``uri`` with its credentials masked, for messages and manifests (:func:`fiscal_sim.io.secrets.mask`)."""
    return mask(uri)


@dataclass(frozen=True)
class Remote:
    """A prefix on a (non-local) filesystem named by a URL."""

    uri: str
    """the URL as given (workers reopen the filesystem from it)"""

    def child(self, *names: str) -> Remote:
        """The URL of ``names`` below this prefix (query options kept)."""
        parts = urlsplit(self.uri)
        path = "/".join([parts.path.rstrip("/"), *names])
        return Remote(urlunsplit(parts._replace(path=path)))

    @property
    def fs_path(self) -> tuple[Any, str]:
        return _open_uri(self.uri)

    def __str__(self) -> str:
        return shown(self.uri)


@lru_cache(maxsize=16)
def _open_uri(uri: str) -> tuple[Any, str]:
    """``(filesystem, path)`` of a URL, opened once per process (workers write many parts through it)."""
    from pyarrow import fs as pafs

    fs, path = pafs.FileSystem.from_uri(uri)
    return fs, path.rstrip("/")


def parse(value: str | Path, option: str = "--out") -> Path | Remote:
    """A local folder (a path, or a ``file://`` URI) or a :class:`Remote` prefix; a bad URL is refused."""
    if isinstance(value, Path):
        return value
    if "://" not in value:
        m = re.match(r"([A-Za-z][A-Za-z0-9+.\-]+):/?(?!/)", value)
        if m and m.group(1).lower() in URL_SCHEMES:
            raise OutputFolderError(
                f"{option} {shown(value)} looks like a storage URL missing a slash: write "
                f"{m.group(1)}://BUCKET/PREFIX (or ./{value} for a local folder of that name)"
            )
        return Path(value)
    try:
        fs, path = _open_uri(value)
    except (ValueError, OSError, TypeError) as e:  # pyarrow.ArrowInvalid is a ValueError
        raise OutputFolderError(
            f"{option} {shown(value)}: not a folder or a storage URL pyarrow can open ({_one_line(e)})"
        ) from None
    if fs.type_name == "local":
        return Path(path or "/")  # file:/// is the root folder (refused by the --out rules), not the working directory
    if not path:
        raise OutputFolderError(f"{option} {shown(value)} names no bucket: give s3://BUCKET/PREFIX")
    return Remote(value)


def _one_line(e: BaseException) -> str:
    return " ".join(str(e).split()) or type(e).__name__


def _os_error(e: OSError) -> str:
    """A local OS error in plain words; a storage service's error (no errno) on one line."""
    return describe_os_error(e) if e.errno else _one_line(e)


def _info(fs: Any, path: str):
    from pyarrow import fs as pafs

    return fs.get_file_info(path), pafs.FileType


def check(
    target: Path | Remote, kind: str, inputs: Iterable[Path | str] = (), hosts: tuple[str, ...] = ()
) -> Path | Remote:
    """Refuse a bad ``--out`` before any work: local folders by :func:`fiscal_sim.io.outdir.check_out`; a remote
    prefix whose bucket is missing or unreachable, that is a file, or whose ``LATEST`` fiscal_sim did not write."""
    if isinstance(target, Path):
        return check_out(target, kind, inputs, hosts)
    fs, path = target.fs_path
    try:
        bucket, types = _info(fs, path.split("/", 1)[0])
        here, _ = _info(fs, path)
        latest = _read_latest(target)
    except OSError as e:
        raise OutputFolderError(f"--out {target}: cannot reach it: {_one_line(e)}") from None
    if bucket.type == types.NotFound:
        raise OutputFolderError(f"--out {target}: bucket {bucket.path} not found (fiscal_sim never creates one)")
    if here.type == types.File:
        raise OutputFolderError(f"--out {target} is a file, not a prefix: give a prefix for the runs")
    if latest is False:
        raise OutputFolderError(f"--out {target} holds a {LATEST} that fiscal_sim did not write: give another prefix")
    return target


def _read_latest(target: Remote) -> dict | None | bool:
    """The ``LATEST`` pointer below ``target``: None when absent, False when it is not fiscal_sim's."""
    fs, path = target.fs_path
    info, types = _info(fs, f"{path}/{LATEST}")
    if info.type == types.NotFound:
        return None
    try:
        with fs.open_input_stream(info.path) as f:
            m = json.loads(f.read(1 << 16))
    except (OSError, ValueError):
        return False
    return m if isinstance(m, dict) and isinstance(m.get("run_id"), str) else False


def _output(fs: Any, path: str):
    """The one place fiscal_sim opens a file on a remote filesystem for writing."""
    if fs.type_name not in ("s3", "gcs"):  # object stores have no folders; others (hdfs, abfs) need them
        fs.create_dir(path.rsplit("/", 1)[0], recursive=True)
    return fs.open_output_stream(path)


def write_part(dest: Path | str, rel: str, table: Any, **options: Any) -> None:
    """Write the Parquet file ``rel`` below ``dest``: a local folder, or a URL (a worker's per-draw part)."""
    import pyarrow.parquet as pq

    if isinstance(dest, Path):
        path = dest / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(table, path, **options)
        return
    fs, base = _open_uri(dest)
    with _output(fs, f"{base}/{rel}") as f:
        pq.write_table(table, f, **options)


def _upload(fs: Any, path: str, data: bytes) -> None:
    with _output(fs, path) as f:
        f.write(data)


def remote_files(target: Remote) -> list[str]:
    """Every file below ``target``, as sorted paths relative to it."""
    from pyarrow import fs as pafs

    fs, path = target.fs_path
    infos = fs.get_file_info(pafs.FileSelector(path, recursive=True, allow_not_found=True))
    return sorted(i.path[len(path) + 1 :] for i in infos if i.type == pafs.FileType.File)


@dataclass
class Staging:
    """Where a command writes a result: ``folder`` holds the client's files; workers write per-draw parts into
    :meth:`dataset` folders (local folders, or URL strings); ``location`` is the result's final place."""

    folder: Path
    location: Path | Remote

    def dataset(self, name: str) -> Path | str:
        """Where workers write the parts of the dataset ``name`` (e.g. ``draws``) of this result."""
        if isinstance(self.location, Remote):
            return self.location.child(name).uri
        return self.folder / name

    @property
    def draws(self) -> Path | str:
        return self.dataset("draws")


@contextmanager
def output(target: Path | str | Remote, kind: str, run_id: str, inputs: Iterable[Path | str] = ()) -> Iterator[Staging]:
    """The place to write a result of ``kind``: a local folder atomically (:func:`replace_dir`), or a new
    ``<target>/<run_id>/`` prefix, its client files uploaded and ``_SUCCESS`` written last when the block
    succeeds (then ``LATEST``); on failure the prefix is left without ``_SUCCESS`` and nothing is deleted."""
    if isinstance(target, str):
        target = parse(target)
    if isinstance(target, Path):
        with replace_dir(target, kind, inputs) as tmp:
            yield Staging(tmp, target)
        return
    check(target, kind)
    run = target.child(run_id)
    if remote_files(run):
        raise OutputFolderError(f"--out {target}: {run_id}/ exists already; nothing was written")
    try:
        with tempfile.TemporaryDirectory(prefix="fiscal_sim-") as tmp:
            yield Staging(Path(tmp), run)
            _publish(Path(tmp), run, kind, run_id)
    except BaseException as e:
        raise _failed(e, run) from e
    _write_latest(target, run_id)


def _publish(folder: Path, run: Remote, kind: str, run_id: str) -> None:
    """Upload the client's files (the manifest last of them, listing every file), then ``_SUCCESS``."""
    fs, base = run.fs_path
    staged = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())
    written = collapse(sorted({*remote_files(run), *staged, MANIFEST, SUCCESS}))
    m = json.loads((folder / MANIFEST).read_text(encoding="utf-8")) if (folder / MANIFEST).is_file() else {}
    m.setdefault("kind", kind)
    m.update(location=str(run), written=written)
    if isinstance(m.get("command"), list):
        m["command"] = mask_all(m["command"])
    (folder / MANIFEST).write_text(json.dumps(m, ensure_ascii=False, indent=2, default=str) + "\n", encoding="utf-8")
    for name in [f for f in staged if f != MANIFEST] + [MANIFEST]:
        _upload(fs, f"{base}/{name}", (folder / name).read_bytes())
    _upload(fs, f"{base}/{SUCCESS}", _json({"run_id": run_id, "kind": kind, "written": written, "created": _now()}))


def _write_latest(target: Remote, run_id: str) -> None:
    fs, base = target.fs_path
    try:
        _upload(fs, f"{base}/{LATEST}", _json({"run_id": run_id, "path": f"{run_id}/", "created": _now()}))
    except OSError as e:
        raise FiscalSimError(
            f"{target.child(run_id)} is complete (its {SUCCESS} is written) but updating "
            f"{target.child(LATEST)} failed: {_os_error(e)}"
        ) from None


def _json(obj: dict) -> bytes:
    return (json.dumps(obj, ensure_ascii=False, indent=2) + "\n").encode("utf-8")


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


def _failed(e: BaseException, run: Remote) -> BaseException:
    """The one-line error of a failed remote run: what failed, and that its prefix has no ``_SUCCESS``."""
    left = f"{run}/ is left without {SUCCESS}, so readers ignore it (fiscal_sim deletes nothing there)"
    if isinstance(e, KeyboardInterrupt):
        return Interrupted(f"interrupted; {left}")
    if isinstance(e, OSError):
        return FiscalSimError(f"writing {run} failed: {_os_error(e)}; {left}")
    if isinstance(e, (InputError, OutputFolderError)):
        return e
    if isinstance(e, FiscalSimError):
        return type(e)(f"{e}; {left}")
    return FiscalSimError(
        f"internal error ({type(e).__name__}: {_one_line(e)}); {left}; run again with --debug and report the traceback"
    )


@contextmanager
def readable(value: str | Path | Remote, what: str = "RUN_DIR") -> Iterator[Path]:
    """A result folder to read: ``value`` itself when local; for a URL, the complete run there (its
    ``_SUCCESS`` written; a prefix holding ``LATEST`` means its last run) copied, without its per-draw ledger,
    into a temporary folder for the duration of the block."""
    where = value if isinstance(value, Remote) else parse(value, what)
    if isinstance(where, Path):
        yield where
        return
    with tempfile.TemporaryDirectory(prefix="fiscal_sim-") as tmp:
        try:
            _download(_complete_run(where, what), Path(tmp))
        except OSError as e:
            raise FiscalSimError(f"reading {what} {where} failed: {_os_error(e)}") from None
        yield Path(tmp)


def _exists(r: Remote) -> bool:
    fs, path = r.fs_path
    info, types = _info(fs, path)
    return info.type != types.NotFound


def _complete_run(where: Remote, what: str) -> Remote:
    """The run ``where`` names: itself when its ``_SUCCESS`` is written, else the run its ``LATEST`` names."""
    if _exists(where.child(SUCCESS)):
        return where
    latest = _read_latest(where)
    if not isinstance(latest, dict):
        raise OutputFolderError(
            f"{what} {where}: no complete run there (no {SUCCESS}, no {LATEST} of fiscal_sim); "
            f"a run that failed has no {SUCCESS} and is not read"
        )
    run = where.child(latest["run_id"])
    if not _exists(run.child(SUCCESS)):
        raise OutputFolderError(f"{what} {where}: its {LATEST} names {latest['run_id']}/, which has no {SUCCESS}")
    return run


LEDGERS = ("draws/", "compare_draws/")
"""the per-draw datasets of a result, left in place by :func:`readable`"""


def _download(run: Remote, folder: Path) -> None:
    """Copy a result's files but its per-draw datasets into ``folder``."""
    fs, base = run.fs_path
    for name in remote_files(run):
        if not name.startswith(LEDGERS):
            local = folder / name
            local.parent.mkdir(parents=True, exist_ok=True)
            with fs.open_input_stream(f"{base}/{name}") as f:
                local.write_bytes(f.read())
