"""The YAML parser behind :class:`fiscal_sim.yamlfile.YamlDoc`: bounded alias expansion, key lines.

Kept apart so that commands served from the compiled-catalogue cache never import PyYAML.
"""

from __future__ import annotations

from typing import Any

import yaml

Path_ = tuple[str | int, ...]


_FAST_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


MAX_NODES = 200_000
"""most YAML nodes a file may expand to, aliases counted at every use ("billion laughs" stops here)"""


class TooBig(yaml.YAMLError):
    """The file expands beyond :data:`MAX_NODES` or an alias refers to itself."""


def expanded_size(root: yaml.Node, limit: int = MAX_NODES) -> int:
    """Nodes of the document with every alias expanded; raise :class:`TooBig` past ``limit`` or on a cycle.

    Each node's size is computed once (aliases share nodes), so the check is
    linear in the file even when its expansion is exponential.
    """
    size: dict[int, int] = {}
    open_: set[int] = set()
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:  # iterative: deep nesting must not overflow the Python stack
        node, done = stack.pop()
        key = id(node)
        kids = (
            [c for kv in node.value for c in kv]
            if isinstance(node, yaml.MappingNode)
            else list(node.value)
            if isinstance(node, yaml.SequenceNode)
            else []
        )
        if done:
            open_.discard(key)
            size[key] = 1 + sum(size[id(c)] for c in kids)
            if size[key] > limit:
                raise TooBig(
                    f"the file expands to more than {limit:,} values through its aliases (&anchor/*alias); "
                    "write the values out or use fewer aliases"
                )
            continue
        if key in size:
            continue
        if key in open_:
            raise TooBig(f"an alias refers to itself (line {node.start_mark.line + 1}): the value would be infinite")
        open_.add(key)
        stack.append((node, True))
        for c in kids:
            if id(c) in open_:
                raise TooBig(f"an alias refers to itself (line {c.start_mark.line + 1}): the value would be infinite")
            if id(c) not in size:
                stack.append((c, False))
    return size[id(root)]


def _parse(text: str) -> tuple[yaml.Node | None, Any]:
    """Compose, check the expanded size, then construct (libyaml when installed).

    On a syntax error the pure-Python parser re-reads the text: its messages
    are clearer (it names the offending character).
    """
    err: yaml.YAMLError | None = None
    for cls in dict.fromkeys((_FAST_LOADER, yaml.SafeLoader)):
        loader = cls(text)
        try:
            node = loader.get_single_node()
            if node is not None:
                expanded_size(node)
            try:
                return node, (loader.construct_document(node) if node is not None else None)
            except ValueError as e:  # a timestamp that is no date (2025-02-30): name its line, not a traceback
                bad = _bad_date(node)
                raise yaml.constructor.ConstructorError(
                    None,
                    None,
                    f"{bad.value!r} is not a date ({e})" if bad else str(e),
                    bad.start_mark if bad else node.start_mark,
                ) from None
        except TooBig:
            raise
        except yaml.YAMLError as e:
            err = e
        finally:
            loader.dispose()
    assert err is not None
    raise err


def _bad_date(root: yaml.Node) -> yaml.ScalarNode | None:
    """The first scalar tagged as a timestamp whose value is no calendar date."""
    import datetime as dt

    stack = [root]
    while stack:
        node = stack.pop()
        if isinstance(node, yaml.ScalarNode):
            if node.tag == "tag:yaml.org,2002:timestamp":
                try:
                    dt.date.fromisoformat(str(node.value)[:10])
                except ValueError:
                    return node
        elif isinstance(node, yaml.MappingNode):
            stack += [c for kv in reversed(node.value) for c in reversed(kv)]
        elif isinstance(node, yaml.SequenceNode):
            stack += list(reversed(node.value))
    return None


def _lines(node: yaml.Node, path: Path_, out: dict[Path_, int], dups: list[tuple[Path_, int]]) -> None:
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
