"""YAML for a linter: every value with its line, and hostile input refused with a clear problem.

`parse_documents` builds plain data (dict, list, str, int, float, bool, None) from the parser's event
stream (libyaml's when present) instead of PyYAML's composer and constructor, because those:
- recurse once per nesting level (a deeply nested document exhausts Python's stack): here nesting is
  an explicit stack, refused beyond `Limits.max_depth`;
- expand aliases without limit for whoever walks the result (the "billion laughs" document is a few
  hundred bytes and a billion nodes once walked): here every alias adds the size of what it points to, and
  a file whose aliases would add more than `Limits.max_alias_nodes` nodes is refused; an alias to a node
  that is still open (a recursive structure) is refused too;
- keep the last of duplicate keys silently (Kubernetes rejects them): here a duplicate key is reported;
- build Python objects for arbitrary tags: here only the YAML 1.1 core tags are read, as Kubernetes reads
  them (timestamps stay strings); another tag is reported and its value read as untagged.

`read_source` reads a file bounded by `Limits.max_file_bytes` (never more than that plus one byte),
only when it is a regular file, and refuses binary content and text that is not UTF-8 (UTF-16 with a
byte-order mark is accepted, as by Kubernetes' YAML reader).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import yaml
from yaml.constructor import SafeConstructor
from yaml.events import (
    AliasEvent,
    CollectionStartEvent,
    DocumentEndEvent,
    DocumentStartEvent,
    Event,
    MappingEndEvent,
    MappingStartEvent,
    ScalarEvent,
    SequenceEndEvent,
    SequenceStartEvent,
)
from yaml.nodes import ScalarNode
from yaml.resolver import Resolver

from rollout.lint.findings import Path, PathPart, Severity

_LOADER: type = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

_STR = "tag:yaml.org,2002:str"
_MERGE = "tag:yaml.org,2002:merge"
_CONSTRUCTED = {
    "tag:yaml.org,2002:int": SafeConstructor.construct_yaml_int,
    "tag:yaml.org,2002:float": SafeConstructor.construct_yaml_float,
    "tag:yaml.org,2002:bool": SafeConstructor.construct_yaml_bool,
    "tag:yaml.org,2002:null": SafeConstructor.construct_yaml_null,
}
# Read as the string written (as Kubernetes does for timestamps; binary stays base64 text).
_AS_TEXT = {_STR, "tag:yaml.org,2002:timestamp", "tag:yaml.org,2002:binary", "tag:yaml.org,2002:value"}
_COLLECTION_TAGS = {"tag:yaml.org,2002:map", "tag:yaml.org,2002:seq", "tag:yaml.org,2002:omap"}


@dataclass(frozen=True)
class Limits:
    max_file_bytes: int = 5 * 1024 * 1024  # Kubernetes itself refuses requests above 3 MiB
    max_depth: int = 100  # nesting levels of collections
    max_alias_nodes: int = 100_000  # nodes aliases may add to one file beyond those written
    max_documents: int = 10_000  # documents in one file


class Position(NamedTuple):
    line: int  # 1-based
    column: int  # 1-based


@dataclass(frozen=True)
class YamlProblem:
    severity: Severity
    rule: str
    message: str
    hint: str = ""
    position: Position | None = None
    document: int | None = None


@dataclass
class YamlDocument:
    index: int  # 0-based position of the document in its file
    data: Any
    start: Position
    positions: dict[Path, Position] = field(default_factory=dict)

    def locate(self, path: Path) -> Position:
        """Where `path` was written: the key of a mapping entry, the start of a list item. A path that is
        not in the file (a missing field, a value reached through an alias) gets its nearest written parent."""
        for end in range(len(path), 0, -1):
            found = self.positions.get(path[:end])
            if found is not None:
                return found
        return self.start


class _Refused(Exception):
    def __init__(self, problem: YamlProblem) -> None:
        super().__init__(problem.message)
        self.problem = problem


class _Merge:
    """The `<<` merge key."""


_MERGE_KEY = _Merge()
_SKIP = object()  # key of an entry whose key could not be used: its value is dropped


@dataclass
class _Frame:
    container: dict[str, Any] | list[Any]
    path: Path
    anchor: str | None
    nodes: int = 1
    as_key: bool = False  # this collection is itself a mapping key (reported, then dropped)
    key: PathPart | _Merge | object | None = None  # pending key of a mapping, None when a key is expected
    key_position: Position | None = None
    key_lines: dict[str, int] = field(default_factory=dict)
    merges: list[tuple[Any, Position]] = field(default_factory=list)


_RESOLVER = Resolver()


@functools.lru_cache(maxsize=8192)
def _plain_tag(value: str) -> str:
    """The tag YAML 1.1 gives a plain scalar (cached: manifests repeat the same keys and values)."""
    tag: str = _RESOLVER.resolve(ScalarNode, value, (True, False))  # type: ignore[no-untyped-call]
    return tag


def _position(event: Event) -> Position:
    mark = event.start_mark
    return Position(mark.line + 1, mark.column + 1) if mark is not None else Position(1, 1)


class _Builder:
    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self.constructor = SafeConstructor()
        self.documents: list[YamlDocument] = []
        self.problems: list[YamlProblem] = []
        self.alias_nodes = 0
        self._reset(Position(1, 1))

    def _reset(self, start: Position) -> None:
        self.stack: list[_Frame] = []
        self.anchors: dict[str, tuple[Any, int]] = {}
        self.open_anchors: set[str] = set()
        self.root: Any = None
        self.doc_start = start
        self.positions: dict[Path, Position] = {}

    @property
    def doc_index(self) -> int:
        return len(self.documents)

    def problem(self, severity: Severity, rule: str, message: str, hint: str, at: Position) -> YamlProblem:
        return YamlProblem(severity, rule, message, hint, at, self.doc_index)

    def refuse(self, rule: str, message: str, hint: str, at: Position) -> _Refused:
        return _Refused(self.problem(Severity.ERROR, rule, message, hint, at))

    # -- events ---------------------------------------------------------------------------------------

    def feed(self, event: Event) -> None:
        kind = type(event)
        if kind is ScalarEvent:
            assert isinstance(event, ScalarEvent)
            at = _position(event)
            self.add(self.scalar(event, at), at, 1, event.anchor)
        elif kind is MappingStartEvent or kind is SequenceStartEvent:
            self.open(event)  # type: ignore[arg-type]
        elif kind is MappingEndEvent or kind is SequenceEndEvent:
            self.close()
        elif kind is AliasEvent:
            self.alias(event)  # type: ignore[arg-type]
        elif kind is DocumentStartEvent:
            if self.doc_index >= self.limits.max_documents:
                raise self.refuse(
                    "yaml/too-many-documents",
                    f"more than {self.limits.max_documents} documents in one file",
                    "split the file",
                    _position(event),
                )
            self._reset(_position(event))
        elif kind is DocumentEndEvent:
            self.documents.append(YamlDocument(self.doc_index, self.root, self.doc_start, self.positions))

    def scalar(self, event: ScalarEvent, at: Position) -> Any:
        tag = event.tag
        if tag is None or tag == "!":
            plain = tag is None and event.implicit[0]
            tag = _plain_tag(event.value) if plain else _STR
        if tag in _AS_TEXT:
            return event.value
        if tag == _MERGE:
            return _MERGE_KEY
        construct = _CONSTRUCTED.get(tag)
        if construct is None:
            self.problems.append(
                self.problem(
                    Severity.WARNING,
                    "yaml/unknown-tag",
                    f"unsupported YAML tag {tag}; its value is read as the string {event.value!r}",
                    "remove the tag: Kubernetes manifests use plain YAML",
                    at,
                )
            )
            return event.value
        try:
            return construct(self.constructor, ScalarNode(tag, event.value))
        except (ValueError, TypeError, KeyError) as exc:
            raise self.refuse(
                "yaml/syntax", f"{event.value!r} is not a valid {tag.rsplit(':', 1)[-1]}: {exc}", "", at
            ) from exc

    def open(self, event: CollectionStartEvent) -> None:
        at = _position(event)
        if len(self.stack) >= self.limits.max_depth:
            raise self.refuse(
                "yaml/too-deep",
                f"nested more than {self.limits.max_depth} levels deep",
                "no Kubernetes object nests this deep; check the file",
                at,
            )
        tag = event.tag
        if tag not in (None, "!") and tag not in _COLLECTION_TAGS:
            self.problems.append(
                self.problem(
                    Severity.WARNING,
                    "yaml/unknown-tag",
                    f"unsupported YAML tag {tag}; the collection is read as untagged",
                    "remove the tag: Kubernetes manifests use plain YAML",
                    at,
                )
            )
        as_key = (
            bool(self.stack) and isinstance(self.stack[-1].container, dict) and self.stack[-1].key is None
        )
        as_key = as_key or any(frame.as_key for frame in self.stack)  # inside a key: nothing is recorded
        path = self.child_path(at) if not as_key else ()
        container: dict[str, Any] | list[Any] = {} if isinstance(event, MappingStartEvent) else []
        if event.anchor is not None:
            self.open_anchors.add(event.anchor)
        self.stack.append(_Frame(container, path, event.anchor, as_key=as_key))

    def close(self) -> None:
        frame = self.stack.pop()
        value: Any = frame.container
        if isinstance(value, dict) and frame.merges:
            value = self.merged(value, frame)
        if frame.anchor is not None:
            self.open_anchors.discard(frame.anchor)
        self.add(value, None, frame.nodes, frame.anchor, closing=frame)

    def alias(self, event: AliasEvent) -> None:
        at = _position(event)
        name = event.anchor or ""
        if name in self.open_anchors:
            raise self.refuse(
                "yaml/recursive-alias",
                f"alias *{name} refers to a collection that contains it (a recursive structure)",
                "Kubernetes objects are trees: copy the content instead of referring to its parent",
                at,
            )
        if name not in self.anchors:
            raise self.refuse(
                "yaml/syntax",
                f"alias *{name} refers to no anchor &{name}",
                "define the anchor before the alias",
                at,
            )
        value, nodes = self.anchors[name]
        self.alias_nodes += nodes
        if self.alias_nodes > self.limits.max_alias_nodes:
            raise self.refuse(
                "yaml/alias-budget",
                f"aliases expand to more than {self.limits.max_alias_nodes} nodes "
                "(an alias bomb, or a file that relies on aliases far too much)",
                "write the content out, or use fewer, smaller anchors",
                at,
            )
        self.add(value, at, nodes, None)

    # -- building -------------------------------------------------------------------------------------

    def child_path(self, at: Position) -> Path:
        if not self.stack:
            return ()
        parent = self.stack[-1]
        if isinstance(parent.container, list):
            path = (*parent.path, len(parent.container))
            self.positions[path] = at
            return path
        key = parent.key
        if isinstance(key, str | int):
            return (*parent.path, key)
        return (*parent.path, "<<")

    def add(
        self, value: Any, at: Position | None, nodes: int, anchor: str | None, closing: _Frame | None = None
    ) -> None:
        if anchor is not None:
            self.anchors[anchor] = (value, nodes)
        if not self.stack:
            self.root = "<<" if value is _MERGE_KEY else value
            return
        parent = self.stack[-1]
        parent.nodes += nodes
        if parent.key is None and isinstance(parent.container, dict):  # this value is a key
            self.take_key(parent, value, at, closing)
            return
        if value is _MERGE_KEY:  # `<<` written as a value is just text
            value = "<<"
        if isinstance(parent.container, list):
            if closing is None and at is not None and not parent.as_key:
                self.positions[(*parent.path, len(parent.container))] = at
            parent.container.append(value)
            return
        key = parent.key
        parent.key = None
        if key is _MERGE_KEY:
            assert parent.key_position is not None
            parent.merges.append((value, parent.key_position))
        elif isinstance(key, str):
            parent.container[key] = value

    def take_key(self, parent: _Frame, key: Any, at: Position | None, closing: _Frame | None) -> None:
        if closing is not None or at is None or isinstance(key, dict | list):
            self.problems.append(
                self.problem(
                    Severity.ERROR,
                    "yaml/complex-key",
                    "a mapping key is a collection; Kubernetes keys are strings",
                    "use a plain string as the key",
                    self.positions.get(parent.path, self.doc_start),
                )
            )
            parent.key = _SKIP
            return
        if key is _MERGE_KEY:
            parent.key, parent.key_position = _MERGE_KEY, at
            return
        text = key if isinstance(key, str) else _key_text(key)
        if text in parent.key_lines:
            self.problems.append(
                self.problem(
                    Severity.ERROR,
                    "yaml/duplicate-key",
                    f"key {text!r} appears twice in this mapping (first on line {parent.key_lines[text]})",
                    "YAML keeps only the last value and Kubernetes rejects the object: merge the two entries",
                    at,
                )
            )
        else:
            parent.key_lines[text] = at.line
        parent.key, parent.key_position = text, at
        if not parent.as_key:
            self.positions[(*parent.path, text)] = at

    def merged(self, mapping: dict[str, Any], frame: _Frame) -> dict[str, Any]:
        result = dict(mapping)
        for source, at in frame.merges:
            sources = source if isinstance(source, list) else [source]
            for item in sources:
                if not isinstance(item, dict):
                    self.problems.append(
                        self.problem(
                            Severity.ERROR,
                            "yaml/syntax",
                            "a merge key `<<` takes a mapping or a list of mappings",
                            "",
                            at,
                        )
                    )
                    continue
                for key, value in item.items():
                    if key not in result:
                        result[key] = value
                        self.positions.setdefault((*frame.path, key), at)
        return result


def _key_text(key: Any) -> str:
    if key is None:
        return "null"
    if isinstance(key, bool):
        return "true" if key else "false"
    return str(key)


def _syntax_problem(exc: yaml.YAMLError, text: str, document: int) -> YamlProblem:
    if isinstance(exc, yaml.MarkedYAMLError) and exc.problem_mark is not None:
        mark = exc.problem_mark
        message = " ".join(str(part) for part in (exc.context, exc.problem) if part)
        return YamlProblem(
            Severity.ERROR,
            "yaml/syntax",
            message or "invalid YAML",
            "",
            Position(mark.line + 1, mark.column + 1),
            document,
        )
    position = getattr(exc, "position", None)
    at = None
    if isinstance(position, int) and 0 <= position <= len(text):
        line = text.count("\n", 0, position) + 1
        at = Position(line, position - (text.rfind("\n", 0, position) + 1) + 1)
    if isinstance(exc, yaml.reader.ReaderError):
        character = exc.character if isinstance(exc.character, str) else chr(exc.character)
        message = f"character U+{ord(character):04X} is not allowed in YAML ({exc.reason})"
        return YamlProblem(
            Severity.ERROR, "yaml/syntax", message, "remove the control character", at, document
        )
    return YamlProblem(Severity.ERROR, "yaml/syntax", str(exc).replace("\n", " "), "", at, document)


def parse_documents(text: str, limits: Limits = Limits()) -> tuple[list[YamlDocument], list[YamlProblem]]:
    """All documents of a YAML stream with the positions of their values, and the problems found.
    Documents before a fatal problem are kept; the one being read when it happened is dropped."""
    builder = _Builder(limits)
    loader = _LOADER(text)
    try:
        while loader.check_event():
            builder.feed(loader.get_event())
    except _Refused as refused:
        builder.problems.append(refused.problem)
    except yaml.YAMLError as exc:
        builder.problems.append(_syntax_problem(exc, text, builder.doc_index))
    finally:
        loader.dispose()
    return builder.documents, builder.problems
