"""The YAML loader of params files and ``--set`` values: PyYAML's safe loader, bounded.

A params file is a few hundred values. PyYAML's own safe loader lets a 358-byte file of nested
aliases (a "billion laughs") stand for billions of values: the value is shared in memory, but
anything that walks or prints it, such as a validation error echoing it, expands it whole. It
also keeps the last of two equal keys without a word, and lets an impossible date escape as a
bare ValueError. Here each of these is a :class:`ParamsError` naming the file and line.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode
from yaml.reader import ReaderError

from capacity_forecaster.core.errors import ParamsError
from capacity_forecaster.core.params_base import short_repr

MAX_ALIASES = 100  # `*name` references in one document
MAX_NODES = 10_000  # values of the document with every alias expanded
MAX_DEPTH = 50  # nesting; PyYAML's composer recurses, past Python's stack by 2000 levels

_MERGE_TAG = "tag:yaml.org,2002:merge"


class BoundedSafeLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that refuses alias bombs, deep nesting, duplicate keys and
    impossible dates with a ParamsError naming ``source`` and the line."""

    def __init__(self, text: str, source: str, *, with_lines: bool = True) -> None:
        super().__init__(text)
        self.source = source
        self.with_lines = with_lines  # False for a one-line `--set` value
        self._aliases = 0
        self._depth = 0
        # Expanded size of every composed node, by id (nodes live as long as the loader).
        self._expanded: dict[int, int] = {}

    def where(self, mark: yaml.Mark | None) -> str:
        """``source, line N``: where a problem is, for the error message."""
        if mark is None or not self.with_lines:
            return self.source
        return f"{self.source}, line {mark.line + 1}"

    def compose_node(self, parent: Node | None, index: int) -> Node | None:
        mark = self.peek_event().start_mark
        if self.check_event(yaml.AliasEvent):
            self._aliases += 1
            if self._aliases > MAX_ALIASES:
                raise ParamsError(
                    f"{self.where(mark)}: more than {MAX_ALIASES} aliases (*name); "
                    "a params file needs few: write the values out"
                )
            node = super().compose_node(parent, index)
            if node is not None and id(node) not in self._expanded:
                raise ParamsError(
                    f"{self.where(mark)}: an alias inside the value it refers to (a value "
                    "that contains itself); write the value out"
                )
            return node
        self._depth += 1
        if self._depth > MAX_DEPTH:
            raise ParamsError(
                f"{self.where(mark)}: values nested more than {MAX_DEPTH} levels deep; "
                "params sections nest a few levels"
            )
        node = super().compose_node(parent, index)
        self._depth -= 1
        if node is not None:
            self._count(node)
        return node

    def _count(self, node: Node) -> None:
        """Record the node's expanded size: itself and its children, aliases counted in full."""
        children: list[Node] = []
        if isinstance(node, SequenceNode):
            children = node.value
        elif isinstance(node, MappingNode):
            children = [child for pair in node.value for child in pair]
        size = 1 + sum(self._expanded[id(child)] for child in children)
        if size > MAX_NODES:
            raise ParamsError(
                f"{self.where(node.start_mark)}: this value holds more than {MAX_NODES} values "
                "once its aliases are expanded; a params file needs far fewer: write them out"
            )
        self._expanded[id(node)] = size

    def construct_mapping(self, node: MappingNode, deep: bool = False) -> dict[Any, Any]:
        # Before SafeConstructor merges `<<: *base` in: a key that overrides a merged one is
        # meant, a key written twice in the same mapping is a mistake.
        first_line: dict[Any, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == _MERGE_TAG:
                continue
            key = self.construct_object(key_node, deep=True)
            try:
                seen = first_line.get(key)
            except TypeError:  # unhashable: SafeConstructor says so
                continue
            line = key_node.start_mark.line + 1
            if seen is not None:
                raise ParamsError(
                    f"{self.where(key_node.start_mark)}: duplicate key {short_repr(key)} "
                    f"(first at line {seen}); keep one of them"
                )
            first_line[key] = line
        return super().construct_mapping(node, deep=deep)

    def construct_yaml_timestamp(self, node: ScalarNode) -> dt.date:
        try:
            return super().construct_yaml_timestamp(node)
        except ValueError as exc:  # 2026-02-30: matches the timestamp pattern, is no day
            raise ParamsError(
                f"{self.where(node.start_mark)}: {short_repr(node.value)} is not a valid date "
                f"({exc}); write a real day as YYYY-MM-DD"
            ) from None

    def construct_yaml_int(self, node: ScalarNode) -> int:
        try:
            return super().construct_yaml_int(node)
        except ValueError:  # past Python's 4300-digit limit for int(str)
            raise ParamsError(
                f"{self.where(node.start_mark)}: {short_repr(node.value)} is too long a number"
            ) from None


BoundedSafeLoader.add_constructor(
    "tag:yaml.org,2002:timestamp", BoundedSafeLoader.construct_yaml_timestamp
)
BoundedSafeLoader.add_constructor("tag:yaml.org,2002:int", BoundedSafeLoader.construct_yaml_int)


def load_yaml(text: str, source: str, *, with_lines: bool = True) -> Any:
    """The one YAML document in ``text``, through :class:`BoundedSafeLoader`; any problem is a
    one-line ParamsError naming ``source`` (and the line, ``with_lines``)."""
    loader = None
    try:
        # PyYAML's reader checks every character as the loader is made.
        loader = BoundedSafeLoader(text, source, with_lines=with_lines)
        return loader.get_single_data()
    except ReaderError as exc:
        raise ParamsError(
            f"{source}: not valid YAML: character {exc.position + 1} "
            f"(#x{exc.character:04x}): {exc.reason}"
        ) from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = ""
        if mark is not None:
            line = f"line {mark.line + 1}, " if with_lines else ""
            where = f" at {line}column {mark.column + 1}"
        # "while scanning a simple key, could not find expected ':'"
        problem = ", ".join(part for part in (exc.context, exc.problem) if part)
        raise ParamsError(f"{source}: not valid YAML{where}: {problem}") from None
    finally:
        if loader is not None:
            loader.dispose()
