"""Safe YAML loading that remembers the line of every key, for error messages."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import ValidationError

from fiscal_sim.errors import InputError, Problem, describe_os_error

Path_ = tuple[str | int, ...]


MAX_FILE_BYTES = 4 * 2**20
"""largest scenario or program file read (the largest in the repository is ~40 KB)"""


def read_text(path: Path, limit: int = MAX_FILE_BYTES) -> str:
    """A UTF-8 text file (a BOM is dropped; CRLF line ends work), with one clear problem for every fault."""

    def problem(msg: str) -> InputError:
        return InputError([Problem(str(path), None, "-", msg)])

    try:
        with open(path, "rb") as f:
            raw = f.read(limit + 1)
    except OSError as e:
        raise problem(f"cannot read file: {describe_os_error(e)}") from None
    if len(raw) > limit:
        raise problem(
            f"file is larger than {limit // 2**20} MB: a scenario or program file is a few KB (is this the right file?)"
        )
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise problem(not_utf8(raw, e)) from None


def not_utf8(raw: bytes, e: UnicodeDecodeError) -> str:
    """What to tell the user about a file that is not UTF-8 (GBK is common in Chinese offices)."""
    looks = "UTF-16" if raw[:2] in (b"\xff\xfe", b"\xfe\xff") else "GBK/GB18030" if _decodes(raw, "gb18030") else None
    hint = f"looks like {looks}" if looks else f"byte {e.start} cannot be read"
    return f"file is not UTF-8 ({hint}); save it as UTF-8"


def _decodes(raw: bytes, encoding: str) -> bool:
    try:
        raw.decode(encoding)
    except UnicodeDecodeError:
        return False
    return True


class YamlDoc:
    """A parsed YAML file: ``data`` (plain Python) and ``line(path)``."""

    def __init__(self, path: Path | str, text: str | None = None):
        self.path = Path(path)
        self.name = str(path)
        import yaml

        from fiscal_sim.yamlparse import TooBig, _lines, _parse

        text = read_text(self.path) if text is None else text
        try:
            node, self.data = _parse(text)
        except RecursionError:
            raise InputError([Problem(self.name, None, "-", "nested too deeply to read")]) from None
        except TooBig as e:
            raise InputError([Problem(self.name, None, "-", str(e))]) from None
        except yaml.YAMLError as e:
            mark = getattr(e, "problem_mark", None)
            raise InputError(
                [
                    Problem(
                        self.name,
                        None,
                        "-",
                        f"invalid YAML: {getattr(e, 'problem', e)}",
                        mark.line + 1 if mark else None,
                    )
                ]
            ) from None
        self._lines: dict[Path_, int] = {}
        dups: list[tuple[Path_, int]] = []
        if node is not None:
            _lines(node, (), self._lines, dups)
        if dups:  # YAML keeps the last of repeated keys: an earlier value would vanish without a word
            raise InputError(
                [
                    Problem(
                        self.name,
                        self._program_at(p),
                        dotted(p),
                        "duplicate key: it is already given above in the same mapping",
                        line,
                    )
                    for p, line in dups
                ]
            )

    def _program_at(self, path: Path_) -> str | None:
        """The id of the program entry ``path`` is in (``programs[i]``), if any."""
        if len(path) > 1 and path[0] == "programs" and isinstance(path[1], int) and isinstance(self.data, dict):
            progs = self.data.get("programs")
            if isinstance(progs, list) and path[1] < len(progs) and isinstance(progs[path[1]], dict):
                pid = progs[path[1]].get("id")
                return str(pid) if pid is not None else None
        return None

    def line(self, path: Path_) -> int | None:
        """The line of ``path`` or of its nearest ancestor present in the file."""
        path = tuple(path)
        while path:
            if path in self._lines:
                return self._lines[path]
            path = path[:-1]
        return self._lines.get(())

    def problem(self, path: Path_, message: str, program: str | None = None) -> Problem:
        return Problem(self.name, program, dotted(path), message, self.line(path))

    def problems_from(self, err: ValidationError, prefix: Path_, program: str | None, data: Any) -> list[Problem]:
        """Turn a pydantic error into located problems (``data`` is the model's input at ``prefix``)."""
        out = []
        for e in err.errors():
            loc = _real_path(e["loc"], data)
            msg = e["msg"].replace("Value error, ", "")
            if e["type"] == "missing":
                msg = "required field is missing"
            elif e["type"] == "extra_forbidden":
                msg = "unknown field (check the spelling)"
            elif e["type"] == "union_tag_invalid":
                msg = msg.replace("Input tag", "kind").replace("found using 'kind' ", "")
            out.append(self.problem(prefix + loc, msg, program))
        return out


DISCRIMINATORS = ("kind", "dist")


def _real_path(loc: tuple, data: Any) -> Path_:
    """Drop the union-member tags pydantic inserts into error locations.

    A discriminated union's tag (the node's ``kind`` or ``dist``) comes right
    after the path enters the node; it is dropped even when it is also the
    name of one of the node's fields (``kind: rate`` has a field ``rate``).
    """
    out: list = []
    cur = data
    entered = True  # the path has just entered ``cur``: a union tag may follow
    for i, part in enumerate(loc):
        if (
            entered
            and isinstance(cur, dict)
            and isinstance(part, str)
            and any(cur.get(d) == part for d in DISCRIMINATORS)
        ):
            entered = False
            continue
        entered = False
        if isinstance(cur, dict) and part in cur:
            entered = True
            out.append(part)
            cur = cur[part]
        elif isinstance(cur, list) and isinstance(part, int) and part < len(cur):
            out.append(part)
            cur = cur[part]
            entered = True
        elif i == len(loc) - 1 and isinstance(cur, dict) and isinstance(part, str) and not _is_tag(part):
            out.append(part)  # a missing or unknown key
    return tuple(out)


def _is_tag(part: str) -> bool:
    return "[" in part or part in {
        "float",
        "int",
        "str",
        "bool",
        "constrained-float",
        "constrained-int",
        "function-after",
        "dict[str,float]",
        "list[str]",
    }


def dotted(path: Path_) -> str:
    s = ""
    for p in path:
        s += f"[{p}]" if isinstance(p, int) else (f".{p}" if s else str(p))
    return s or "-"
