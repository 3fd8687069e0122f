"""Safe YAML loading that remembers the line of every key, for error messages."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import ValidationError

from fiscal_sim.errors import InputError, Problem

Path_ = tuple[str | int, ...]


def _parse(text: str) -> tuple[yaml.Node | None, Any]:
    """Compose and construct in one pass (libyaml when installed).

    On a syntax error the pure-Python parser re-reads the text: its messages
    are clearer (it names the offending character).
    """
    import yaml  # here, not at import: commands served from the catalogue cache read no YAML

    err: yaml.YAMLError | None = None
    for cls in dict.fromkeys((getattr(yaml, "CSafeLoader", yaml.SafeLoader), yaml.SafeLoader)):
        loader = cls(text)
        try:
            node = loader.get_single_node()
            return node, (loader.construct_document(node) if node is not None else None)
        except yaml.YAMLError as e:
            err = e
        finally:
            loader.dispose()
    assert err is not None
    raise err


def _lines(node: yaml.Node, path: Path_, out: dict[Path_, int], dups: list[tuple[Path_, int]]) -> None:
    import yaml

    out.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        seen = set()
        for k, v in node.value:
            key = k.value
            if key in seen and key != "<<":
                dups.append((path + (key,), k.start_mark.line + 1))
            seen.add(key)
            out[path + (key,)] = k.start_mark.line + 1
            _lines(v, path + (key,), out, dups)
    elif isinstance(node, yaml.SequenceNode):
        for i, v in enumerate(node.value):
            _lines(v, path + (i,), out, dups)


class YamlDoc:
    """A parsed YAML file: ``data`` (plain Python) and ``line(path)``."""

    def __init__(self, path: Path | str, text: str | None = None):
        import yaml

        self.path = Path(path)
        self.name = str(path)
        try:
            text = self.path.read_text(encoding="utf-8") if text is None else text
        except OSError as e:
            raise InputError([Problem(self.name, None, "-", f"cannot read file: {e.strerror}")]) from None
        try:
            node, self.data = _parse(text)
        except yaml.YAMLError as e:
            mark = getattr(e, "problem_mark", None)
            raise InputError([Problem(self.name, None, "-", f"invalid YAML: {getattr(e, 'problem', e)}",
                                      mark.line + 1 if mark else None)]) from None
        self._lines: dict[Path_, int] = {}
        dups: list[tuple[Path_, int]] = []
        if node is not None:
            _lines(node, (), self._lines, dups)
        if dups:  # YAML keeps the last of repeated keys: an earlier value would vanish without a word
            raise InputError([Problem(self.name, self._program_at(p), dotted(p),
                                      "duplicate key: it is already given above in the same mapping", line)
                              for p, line in dups])

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
        if entered and isinstance(cur, dict) and isinstance(part, str) and any(
                cur.get(d) == part for d in DISCRIMINATORS):
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
    return "[" in part or part in {"float", "int", "str", "bool", "constrained-float", "constrained-int",
                                   "function-after", "dict[str,float]", "list[str]"}


def dotted(path: Path_) -> str:
    s = ""
    for p in path:
        s += f"[{p}]" if isinstance(p, int) else (f".{p}" if s else str(p))
    return s or "-"
