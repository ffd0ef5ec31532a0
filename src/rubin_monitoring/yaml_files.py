"""The one YAML reader of the files people write (the repository's values files, the routes
file, the scrape catalog): safe loading only, every mapping remembering its own line and its
keys' lines, duplicate keys refused, size bounded, and errors that name a line but never quote
the file's text (a routes file holds webhook URLs).

``<<:`` merges are allowed; a key written in a mapping may override a merged one, but a key
written twice is an error naming both lines.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml

from .models.names import quoted


class YamlProblem(Exception):
    """A file that is not the YAML it should be: ``line`` (1-based, when known) and ``column``
    say where, ``text`` what, without quoting the file."""

    def __init__(self, text: str, line: int | None = None, column: int | None = None) -> None:
        super().__init__(text)
        self.text = text
        self.line = line
        self.column = column


class YamlMapping(dict[Any, Any]):
    """A YAML mapping that remembers its own line, each key's line and each key's text."""

    def __init__(self, start_line: int = 0) -> None:
        super().__init__()
        self.start_line = start_line
        self.key_lines: dict[Any, int] = {}
        self.key_texts: dict[Any, str] = {}

    def line(self, key: Any) -> int:
        """The line of ``key``, else of the mapping itself."""
        return self.key_lines.get(key, self.start_line)

    @property
    def first_line(self) -> int:
        """The line of the mapping's first key (its own line when empty)."""
        return min(self.key_lines.values(), default=self.start_line)


class _Loader(yaml.SafeLoader):
    """A SafeLoader whose mappings are :class:`YamlMapping` and that refuses duplicate keys."""


def _key_text(node: yaml.Node) -> str:
    if isinstance(node, yaml.ScalarNode):
        return str(node.value)
    return "<a list>" if isinstance(node, yaml.SequenceNode) else "<a mapping>"


def _construct_mapping(loader: yaml.SafeLoader, node: yaml.MappingNode) -> YamlMapping:
    first_lines: dict[tuple[type, Any], int] = {}
    for key_node, _ in node.value:  # the keys written here: merged (<<) ones may be overridden
        if key_node.tag == "tag:yaml.org,2002:merge":
            continue
        key = loader.construct_object(key_node, deep=True)
        try:
            identity = (type(key), key)
            seen = identity in first_lines
        except TypeError:
            raise yaml.constructor.ConstructorError(
                None, None, "a list or mapping cannot be a key", key_node.start_mark
            ) from None
        if seen:
            raise yaml.constructor.ConstructorError(
                None,
                None,
                f"duplicate key {quoted(_key_text(key_node))} "
                f"(first on line {first_lines[identity]})",
                key_node.start_mark,
            )
        first_lines[identity] = key_node.start_mark.line + 1
    loader.flatten_mapping(node)
    mapping = YamlMapping(node.start_mark.line + 1)
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        mapping[key] = loader.construct_object(value_node, deep=True)
        mapping.key_lines[key] = key_node.start_mark.line + 1
        mapping.key_texts[key] = _key_text(key_node)
    return mapping


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def parse_yaml(text: str) -> Any:
    """The document in ``text`` (None when empty); :class:`YamlProblem` if it is not valid
    YAML, holds a duplicate key, or is nested too deeply."""
    try:
        return yaml.load(text, Loader=_Loader)  # a SafeLoader
    except yaml.MarkedYAMLError as error:
        # str(error) quotes the offending line: use the parts.
        mark = error.problem_mark or error.context_mark
        problem = error.problem or error.context or "cannot parse"
        line, column = (mark.line + 1, mark.column + 1) if mark else (None, None)
        raise YamlProblem(f"invalid YAML: {problem}", line, column) from None
    except yaml.YAMLError as error:  # a ReaderError: its first line says what, not where
        problem = next(iter(str(error).splitlines()), "") or type(error).__name__
        raise YamlProblem(f"invalid YAML: {problem}") from None
    except RecursionError:
        raise YamlProblem("invalid YAML: nested too deeply") from None


def read_bounded(path: Path, max_bytes: int) -> str:
    """The UTF-8 text of ``path``, refused without reading it all if it is larger than
    ``max_bytes``; :class:`YamlProblem` if it cannot be read."""
    try:
        with path.open("rb") as file:
            size = os.fstat(file.fileno()).st_size
            content = b"" if size > max_bytes else file.read(max_bytes + 1)  # it may grow
        size = max(size, len(content))
        if size > max_bytes:
            raise YamlProblem(f"{size} bytes, more than the limit of {max_bytes} bytes; refused")
        return content.decode("utf-8")
    except (UnicodeDecodeError, OSError) as error:
        reason = getattr(error, "strerror", None) or type(error).__name__
        raise YamlProblem(f"cannot read: {reason}") from None


def where(shown: str, problem: YamlProblem) -> str:
    """``shown`` (the file) and the problem's place and text, as one message."""
    if problem.line is None:
        return f"{shown}: {problem.text}"
    column = f", column {problem.column}" if problem.column else ""
    return f"{shown}: line {problem.line}{column}: {problem.text}"


def load_mapping(path: Path, shown: str, max_bytes: int) -> YamlMapping:
    """The mapping at the top of the YAML file ``path`` (an empty file: an empty mapping), at
    most ``max_bytes``; :class:`YamlProblem` (its text starting with ``shown`` and the place)
    otherwise."""
    try:
        data = parse_yaml(read_bounded(path, max_bytes))
    except YamlProblem as problem:
        raise YamlProblem(where(shown, problem)) from None
    if data is None:
        return YamlMapping()
    if not isinstance(data, YamlMapping):
        raise YamlProblem(f"{shown}: expected a mapping at the top level")
    return data
