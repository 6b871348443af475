"""Text -> validated `Document`s.

Accepts multi-document YAML (`---`) or JSON: one object, a list of objects, or
`{"documents": [...]}` (YAML documents may take the same three shapes). Every document
needs `name` and `type`; the type picks the model from the registry. Nothing is returned
unless everything is valid: all problems in all documents are collected and raised as one
`ConfigValidationError`.

Raw documents are normalised through JSON (what is validated is exactly what is stored
and later reloaded). YAML timestamps stay strings, and a key given twice in one mapping
is a syntax error rather than a silent overwrite.

YAML is parsed with limits, because a few hundred bytes of aliases ("billion laughs")
expand to a billion nodes once the documents are normalised: a text may hold at most
`MAX_YAML_NODES` nodes counting every alias as the whole node it repeats, nest at most
`MAX_YAML_DEPTH` collections deep, and no alias may refer to a collection that contains
it. Counting as the text is composed refuses a bomb after a few thousand nodes, in
milliseconds, before anything is expanded.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal, cast

import orjson
import yaml
from pydantic import BaseModel, ValidationError

from sluicegate.config.diff import DocumentKey
from sluicegate.config.problems import ConfigValidationError, Problem, problems_from_validation
from sluicegate.config.registry import DocumentRegistry
from sluicegate.errors import ConfigError
from sluicegate.types import JSONObject

log = logging.getLogger(__name__)

Format = Literal["auto", "yaml", "json"]

MAX_YAML_NODES = 100_000  # a large real config (every model priced, many rules) is ~10k
MAX_YAML_DEPTH = 64  # config documents nest < 10 deep; PyYAML's composer recurses


@dataclass(frozen=True)
class Document:
    type: str
    name: str
    model: BaseModel
    raw: JSONObject

    @property
    def key(self) -> DocumentKey:
        return (self.type, self.name)


def parse_documents(
    text: str, registry: DocumentRegistry, *, source_name: str = "input", format: Format = "auto"
) -> list[Document]:
    """Every document in `text`, validated; ConfigValidationError lists all problems."""
    return parse_sources([(source_name, text)], registry, format=format)


def parse_sources(
    sources: Sequence[tuple[str, str]], registry: DocumentRegistry, *, format: Format = "auto"
) -> list[Document]:
    """Several texts (e.g. the files of `serve --config`) validated as one set."""
    problems: list[Problem] = []
    labelled: list[tuple[str, object]] = []
    for source_name, text in sources:
        try:
            raws = load_raw(text, source_name=source_name, format=format)
        except ConfigValidationError as exc:
            problems.extend(exc.problem_list)
            continue
        prefix = source_name if len(sources) > 1 else ""
        labelled.extend((f"{prefix}#{index}", raw) for index, raw in enumerate(raws, 1))
    documents = _validate_all(labelled, registry, problems)
    if problems:
        raise ConfigValidationError(problems)
    return documents


def documents_from_raw(raws: Sequence[object], registry: DocumentRegistry) -> list[Document]:
    """Stored raw documents (a version's set) validated again."""
    problems: list[Problem] = []
    documents = _validate_all([(f"#{i}", raw) for i, raw in enumerate(raws, 1)], registry, problems)
    if problems:
        raise ConfigValidationError(problems)
    return documents


def load_raw(text: str, *, source_name: str = "input", format: Format = "auto") -> list[object]:
    """The documents in `text` before validation (syntax errors raise, with line/column)."""
    json_error: ConfigValidationError | None = None
    if format == "json" or (format == "auto" and text.lstrip()[:1] in ("{", "[")):
        try:
            return _flatten([orjson.loads(text)])
        except orjson.JSONDecodeError as exc:
            json_error = _syntax(
                source_name,
                f"JSON syntax error at line {exc.lineno}, column {exc.colno}: {exc.msg}",
            )
            if format == "json":
                raise json_error from exc
    try:
        return _flatten(list(yaml.load_all(text, Loader=_Loader)))
    except yaml.YAMLError as exc:  # JSON-looking text that is not YAML either: JSON's error
        raise json_error or _yaml_syntax(source_name, exc) from exc


def _yaml_syntax(source_name: str, exc: yaml.YAMLError) -> ConfigValidationError:
    if isinstance(exc, yaml.MarkedYAMLError):
        mark = exc.problem_mark or exc.context_mark
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        reason = exc.problem or exc.context or "unreadable"
        if isinstance(exc, _OverLimit):
            return _syntax(source_name, f"YAML refused{where}: {reason}")
        return _syntax(source_name, f"YAML syntax error{where}: {reason}")
    return _syntax(source_name, f"YAML syntax error: {exc}")


def _syntax(source_name: str, message: str) -> ConfigValidationError:
    return ConfigValidationError([Problem(source_name, None, "", message)])


def _flatten(values: list[Any]) -> list[object]:
    items: list[object] = []
    for value in values:
        if value is None:  # an empty YAML document, e.g. after a trailing `---`
            continue
        if (
            isinstance(value, dict)
            and set(value) == {"documents"}
            and isinstance(value["documents"], list)
        ):
            value = value["documents"]
        items.extend(value if isinstance(value, list) else [value])
    return items


def _validate_all(
    labelled: Sequence[tuple[str, object]], registry: DocumentRegistry, problems: list[Problem]
) -> list[Document]:
    documents: list[Document] = []
    first_seen: dict[DocumentKey, str] = {}
    for label, raw in labelled:
        key = _raw_key(raw)
        if key is not None and key in first_seen:
            problems.append(
                Problem(
                    key[1],
                    key[0],
                    "name",
                    f"duplicate document: {first_seen[key]} and {label} "
                    f"are both {key[0]!r} named {key[1]!r}",
                )
            )
            continue
        if key is not None:
            first_seen[key] = label
        document = _validate_one(label, raw, registry, problems)
        if document is not None:
            documents.append(document)
    return documents


def _raw_key(raw: object) -> DocumentKey | None:
    if isinstance(raw, dict):
        type_name, name = raw.get("type"), raw.get("name")
        if isinstance(type_name, str) and isinstance(name, str) and name:
            return (type_name, name)
    return None


def _validate_one(
    label: str, raw: object, registry: DocumentRegistry, problems: list[Problem]
) -> Document | None:
    if not isinstance(raw, dict):
        problems.append(
            Problem(
                label,
                None,
                "",
                f"a document must be a mapping with 'name' and 'type', got {_kind(raw)}",
            )
        )
        return None
    name = raw.get("name")
    document = name if isinstance(name, str) and name else label
    type_name = _type_of(raw, document, registry, problems)
    if type_name is None:
        return None
    normal = _normalise(raw, document, type_name, problems)
    if normal is None:
        return None
    model = _model(registry.model_for(type_name), normal, document, type_name, problems)
    if model is None:
        return None
    if not (isinstance(name, str) and name):  # a model that does not require `name` itself
        problems.append(Problem(document, type_name, "name", "field required"))
        return None
    return Document(type_name, name, model, normal)


def _type_of(
    raw: dict[Any, Any], document: str, registry: DocumentRegistry, problems: list[Problem]
) -> str | None:
    type_name = raw.get("type")
    if type_name is None:
        problems.append(Problem(document, None, "type", "field required"))
        return None
    if not isinstance(type_name, str):
        problems.append(
            Problem(document, None, "type", f"must be a string, got {_kind(type_name)}")
        )
        return None
    try:
        registry.model_for(type_name)
    except ConfigError as exc:
        problems.append(Problem(document, type_name, "type", exc.message))
        return None
    return type_name


def _normalise(
    raw: dict[Any, Any], document: str, type_name: str, problems: list[Problem]
) -> JSONObject | None:
    try:
        normal: JSONObject = orjson.loads(orjson.dumps(raw, option=orjson.OPT_NON_STR_KEYS))
    except TypeError as exc:
        problems.append(Problem(document, type_name, "", f"not representable as JSON: {exc}"))
        return None
    return normal


def _model(
    model_cls: type[BaseModel],
    raw: JSONObject,
    document: str,
    type_name: str,
    problems: list[Problem],
) -> BaseModel | None:
    try:
        return model_cls.model_validate(raw)
    except ValidationError as exc:
        problems.extend(problems_from_validation(exc, raw, document=document, type_name=type_name))
    except Exception as exc:  # a bug in a validator must not become a 500 for the applier
        log.exception("validating %s %r raised", type_name, document)
        problems.append(Problem(document, type_name, "", f"validation failed: {exc!r}"))
    return None


def _kind(value: object) -> str:
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return repr(value) if len(repr(value)) <= 40 else type(value).__name__


_TIMESTAMP = "tag:yaml.org,2002:timestamp"
_MERGE = "tag:yaml.org,2002:merge"


class _Loader(yaml.SafeLoader):
    """SafeLoader that keeps timestamps as strings, refuses duplicate keys and holds the
    text to the node, depth and alias limits above."""

    yaml_implicit_resolvers = {
        first: [(tag, regexp) for tag, regexp in resolvers if tag != _TIMESTAMP]
        for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
    }

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._nodes = 0  # across every document of the text: `---` must not reset it
        self._depth = 0
        self._open_anchors: set[str] = set()
        self._sizes: dict[yaml.Node, int] = {}  # size with aliases expanded, by identity

    def compose_node(self, parent: yaml.Node | None, index: int) -> yaml.Node | None:
        event: yaml.Event = self.peek_event()  # type: ignore[no-untyped-call]
        if isinstance(event, yaml.AliasEvent):
            if event.anchor in self._open_anchors:
                raise _limit(event, f"alias *{event.anchor} refers to a collection holding it")
            node = super().compose_node(parent, index)
            if node is not None:
                self._count(event, _expanded_size(node, self._sizes))
            return node
        self._count(event, 1)
        if not isinstance(event, yaml.CollectionStartEvent):
            return super().compose_node(parent, index)
        self._depth += 1
        if self._depth > MAX_YAML_DEPTH:
            raise _limit(event, f"collections nested more than {MAX_YAML_DEPTH} deep")
        if event.anchor is not None:
            self._open_anchors.add(event.anchor)
        try:
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1
            self._open_anchors.discard(event.anchor or "")

    def _count(self, event: yaml.Event, nodes: int) -> None:
        self._nodes += nodes
        if self._nodes > MAX_YAML_NODES:
            raise _limit(
                event, f"more than {MAX_YAML_NODES} YAML nodes (counting each alias expanded)"
            )

    def construct_mapping(self, node: yaml.Node, deep: bool = False) -> dict[Any, Any]:
        if isinstance(node, yaml.MappingNode):
            seen: set[tuple[str, str]] = set()
            for key_node, _ in node.value:
                if isinstance(key_node, yaml.ScalarNode) and key_node.tag != _MERGE:
                    key = (key_node.tag, key_node.value)
                    if key in seen:
                        raise yaml.constructor.ConstructorError(
                            "while reading a mapping",
                            node.start_mark,
                            f"duplicate key {key_node.value!r}",
                            key_node.start_mark,
                        )
                    seen.add(key)
        # the stub wants a MappingNode; PyYAML checks any node itself and raises for others
        return super().construct_mapping(node, deep=deep)  # type: ignore[arg-type]


class _OverLimit(yaml.composer.ComposerError):
    """The text is well-formed YAML but asks for more than the limits allow."""


def _limit(event: yaml.Event, problem: str) -> _OverLimit:
    mark = cast(yaml.error.Mark | None, event.start_mark)  # the pure-Python parser's
    return _OverLimit("while composing the document", None, problem, mark)


def _expanded_size(node: yaml.Node, sizes: dict[yaml.Node, int]) -> int:
    """Nodes in `node` with every alias inside it expanded. Memoised, so repeating an
    alias costs nothing more; the walk stops at nodes already measured, so it recurses
    no deeper than the text nests (the composer's depth limit)."""
    known = sizes.get(node)
    if known is not None:
        return known
    size = 1
    if isinstance(node, yaml.SequenceNode):
        size += sum(_expanded_size(child, sizes) for child in node.value)
    elif isinstance(node, yaml.MappingNode):
        size += sum(
            _expanded_size(key, sizes) + _expanded_size(value, sizes) for key, value in node.value
        )
    sizes[node] = size
    return size
