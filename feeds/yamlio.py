"""YAML loading for records and data files: the YAML 1.2 core schema, JSON-compatible values only.

PyYAML implements YAML 1.1, where ``NO``, ``off`` and ``y`` are booleans, ``012`` is octal,
``1:20`` is sexagesimal, unquoted dates are timestamps (and an invalid one such as
``2023-02-30`` is an exception), and ``!!set``/``!!binary`` build values JSON cannot hold.
Records are data for a JSON API, so this loader resolves plain scalars with the YAML 1.2
core schema (https://yaml.org/spec/1.2.2/#1032-tag-resolution): booleans only from
``true|True|TRUE|false|False|FALSE``, decimal/``0o``/``0x`` integers, no timestamps (date
fields are parsed from their strings by ``feeds.records``). It also refuses, with the line:
aliases (a small file expanding into a huge structure), a key written twice (the later value
would silently win), non-text keys, tags other than the core ones, and nesting deeper than
``MAX_DEPTH``. Jekyll (Ruby's Psych, YAML 1.1) reads ``NO`` as false: that difference is
deliberate, see README "Importing real content".
"""
from __future__ import annotations

import math
import re
from typing import Any

import yaml

try:  # a Rust YAML 1.2 parser: a quarter of libyaml-through-PyYAML's cost per record (see _fast_load)
    import yaml_rs
except ImportError:  # pragma: no cover - a declared dependency; without it every load takes PyYAML's path
    yaml_rs = None

Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_Dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)

MAX_DEPTH = 64  # real records nest 3 levels; libyaml's recursive composer crashes the process near 100k
# The composer recurses once per nesting level; below this many nesting indicators (plus
# the ~1400 levels that indentation alone can reach in a 1 MiB file) it is safe to run.
_INDICATOR_BUDGET = 4000

_CORE_BOOL = re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$")
_CORE_NULL = re.compile(r"^(?:~|null|Null|NULL|)$")
_CORE_INT = re.compile(r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$")
_CORE_FLOAT = re.compile(r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?"
                         r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$")
_CORE_TAGS = frozenset(f"tag:yaml.org,2002:{t}" for t in ("str", "int", "float", "bool", "null", "seq", "map"))


class YamlProblem(ValueError):
    """A YAML document that cannot be used; ``line`` is 1-based (a file line when ``load_yaml``
    was given ``first_line``)."""

    def __init__(self, reason: str, line: int | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.line = line


def _line(node: yaml.Node) -> int:
    return node.start_mark.line + 1


class _CoreResolver(yaml.resolver.Resolver):
    """Plain-scalar resolution of the YAML 1.2 core schema (first character -> candidate tags)."""

    yaml_implicit_resolvers: dict = {}


for _tag, _regexp, _first in (
    ("bool", _CORE_BOOL, "tTfF"),
    ("null", _CORE_NULL, ["~", "n", "N", ""]),
    ("int", _CORE_INT, "-+0123456789"),
    ("float", _CORE_FLOAT, "-+.0123456789"),
):
    _CoreResolver.add_implicit_resolver(f"tag:yaml.org,2002:{_tag}", _regexp, list(_first))


_STR, _SEQ, _MAP = (f"tag:yaml.org,2002:{t}" for t in ("str", "seq", "map"))
# First character of a plain scalar -> its candidate (tag, pattern) pairs ('' for the empty scalar).
_BY_FIRST: dict[str, list[tuple[str, re.Pattern[str]]]] = {
    first: list(resolvers) for first, resolvers in _CoreResolver.yaml_implicit_resolvers.items() if first is not None
}


def _fast_resolve(self: Any, kind: type, value: str | None, implicit: tuple[bool, bool]) -> str:
    """``Resolver.resolve`` for this schema alone (no wildcard or path resolvers): libyaml's
    composer calls it once per node, and the generic one costs a tenth of a record's load."""
    if kind is yaml.ScalarNode:
        if implicit[0]:
            for tag, regexp in _BY_FIRST.get(value[:1], ()):  # type: ignore[index]
                if regexp.match(value):  # type: ignore[arg-type]
                    return tag
        return _STR
    return _SEQ if kind is yaml.SequenceNode else _MAP


_CoreResolver.resolve = _fast_resolve  # type: ignore[method-assign]
# libyaml's composer calls these two hooks around every node to track path resolvers, which
# this schema has none of: C builtins taking the same arguments and doing nothing replace two
# Python calls per node.
_CoreResolver.descend_resolver = staticmethod(slice)  # type: ignore[assignment]
_CoreResolver.ascend_resolver = staticmethod(tuple)  # type: ignore[assignment]


class _Unusual(Exception):
    """A node the fast builder leaves to PyYAML's constructor (which then says what is wrong)."""


class _CoreConstructor(yaml.constructor.SafeConstructor):
    """Core-schema scalars, text keys only, no duplicate keys, no tags beyond the core ones."""

    def construct_yaml_int(self, node: yaml.ScalarNode) -> int:
        value = str(self.construct_scalar(node))
        if not _CORE_INT.match(value):  # reachable with an explicit tag: !!int abc
            raise YamlProblem(f"{value[:40]!r} is not an integer", _line(node))
        if value.startswith(("0o", "0x")):
            return int(value[2:], 8 if value[1] == "o" else 16)
        return int(value)  # decimal even with leading zeros ("012" is 12, not YAML 1.1's octal 10)

    def construct_yaml_float(self, node: yaml.ScalarNode) -> float:
        value = str(self.construct_scalar(node))
        if not _CORE_FLOAT.match(value) and not _CORE_INT.match(value):
            raise YamlProblem(f"{value[:40]!r} is not a number", _line(node))
        value = value.lower()
        if value.startswith(("0o", "0x")):
            return float(self.construct_yaml_int(node))
        if value.endswith(("inf", "nan")):
            return -math.inf if value.startswith("-") else math.nan if "nan" in value else math.inf
        return float(value)

    def construct_yaml_bool(self, node: yaml.ScalarNode) -> bool:
        value = str(self.construct_scalar(node))
        if not _CORE_BOOL.match(value):
            raise YamlProblem(f"{value[:40]!r} is not true or false", _line(node))
        return value.lower() == "true"

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[str, Any]:
        if not isinstance(node, yaml.MappingNode):
            raise YamlProblem("expected a mapping", _line(node))
        seen: dict[str, int] = {}
        for key_node, _ in node.value:
            if not isinstance(key_node, yaml.ScalarNode) or key_node.tag != "tag:yaml.org,2002:str":
                shown = key_node.value if isinstance(key_node, yaml.ScalarNode) else key_node.id
                raise YamlProblem(f"mapping key {shown!r} is not text (quote it)", _line(key_node))
            if key_node.value in seen:
                raise YamlProblem(f"key {key_node.value!r} is written twice (lines {seen[key_node.value]} and "
                                  f"{_line(key_node)}): remove one", _line(key_node))
            seen[key_node.value] = _line(key_node)
        return super().construct_mapping(node, deep)

    def build(self, node: yaml.Node, depth: int = 1) -> Any:
        """The value of a composed node tree holding only text-keyed mappings without repeated
        keys, lists and core-schema scalars, nested at most ``MAX_DEPTH`` levels: what every
        real record is. Gives what ``construct_document`` gives (the same scalar constructors),
        at a third of its cost. Raises ``_Unusual`` for anything else, so the caller can let
        ``construct_document`` build it, or report the problem, exactly as before."""
        tag = node.tag
        if type(node) is yaml.ScalarNode:
            if tag == _STR:
                return node.value
            scalar = self.yaml_constructors.get(tag)
            if scalar is None or tag in (_SEQ, _MAP):
                raise _Unusual
            return scalar(self, node)
        if depth > MAX_DEPTH:
            raise _Unusual
        if type(node) is yaml.MappingNode and tag == _MAP:
            mapping: dict[str, Any] = {}
            for key_node, value_node in node.value:
                if type(key_node) is not yaml.ScalarNode or key_node.tag != _STR or key_node.value in mapping:
                    raise _Unusual
                mapping[key_node.value] = self.build(value_node, depth + 1)
            return mapping
        if type(node) is yaml.SequenceNode and tag == _SEQ:
            return [self.build(item, depth + 1) for item in node.value]
        raise _Unusual

    def construct_undefined(self, node: yaml.Node) -> Any:
        raise YamlProblem(f"YAML tag {node.tag.replace('tag:yaml.org,2002:', '!!')} is not allowed "
                          "(only text, numbers, true/false, null, lists and mappings)", _line(node))


_CoreConstructor.yaml_constructors = {
    tag: fn for tag, fn in yaml.constructor.SafeConstructor.yaml_constructors.items() if tag in _CORE_TAGS
}
for _tag, _fn in (("int", _CoreConstructor.construct_yaml_int), ("float", _CoreConstructor.construct_yaml_float),
                  ("bool", _CoreConstructor.construct_yaml_bool)):
    _CoreConstructor.add_constructor(f"tag:yaml.org,2002:{_tag}", _fn)
_CoreConstructor.add_constructor(None, _CoreConstructor.construct_undefined)


class CoreLoader(Loader, _CoreConstructor, _CoreResolver):  # type: ignore[misc,valid-type]
    """libyaml's parser (when present) with the core-schema constructor and resolver above
    (they come before PyYAML's 1.1 ones in the method resolution order)."""


def _union(*tables: dict) -> dict:
    merged: dict = {}
    for table in tables:
        for first, resolvers in table.items():
            merged.setdefault(first, []).extend(resolvers)
    return merged


class CoreDumper(_Dumper):  # type: ignore[misc,valid-type]
    """Quotes every string that either YAML 1.2 (this loader) or YAML 1.1 (Jekyll) would read
    as something else: ``0o17``, ``1e3``, ``NO``, ``2024-01-01``."""

    yaml_implicit_resolvers = _union(yaml.resolver.Resolver.yaml_implicit_resolvers,
                                     _CoreResolver.yaml_implicit_resolvers)


def _scan_events(text: str) -> None:
    """Refuse aliases and deep nesting from the event stream (libyaml's parser is iterative)."""
    depth = 0
    try:
        for event in yaml.parse(text, Loader=Loader):
            mark = event.start_mark
            if isinstance(event, yaml.AliasEvent):
                # Aliases let a small file expand into a huge structure ("billion laughs");
                # real records never use them.
                raise YamlProblem("YAML aliases (*name) are not allowed", mark.line + 1 if mark else None)
            if isinstance(event, yaml.CollectionStartEvent):
                depth += 1
                if depth > MAX_DEPTH:
                    raise YamlProblem(f"nested deeper than {MAX_DEPTH} levels", mark.line + 1 if mark else None)
            elif isinstance(event, yaml.CollectionEndEvent):
                depth -= 1
    except yaml.YAMLError as exc:
        if "maximum nesting depth" in str(exc):  # libyaml 0.2.6 (PyYAML 6.0.4 wheels) stops first
            mark = getattr(exc, "problem_mark", None)
            raise YamlProblem(f"nested deeper than {MAX_DEPTH} levels", mark.line + 1 if mark else None) from None
        return  # the loader reports the syntax error with its own position


def _needs_scan(text: str) -> bool:
    # The scan costs a third of a load, so it runs only when aliases or a suspicious number of
    # nesting indicators could be present.
    return "*" in text or sum(text.count(c) for c in "[{-?") > _INDICATOR_BUDGET


def _check_depth(value: Any) -> None:
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise YamlProblem(f"nested deeper than {MAX_DEPTH} levels")
        children = item.values() if isinstance(item, dict) else item if isinstance(item, list) else ()
        stack.extend((child, depth + 1) for child in children if isinstance(child, (dict, list)))


def load_yaml(text: str, *, first_document_only: bool = False, first_line: int = 1) -> Any:
    """Parse one YAML document with the core schema; raises ``YamlProblem`` (reason, line).

    ``first_line`` is the file line ``text`` starts on (2 after a ``---`` line): every line in
    a problem, including both lines of a duplicated key, is a line of the file.

    ``first_document_only`` mirrors Jekyll for data files: a stray trailing ``---`` starts an
    empty second document that a plain load refuses; Jekyll reads the first one.
    A second document with content is still an error, since its data would be silently lost.
    """
    try:
        return _load(text, first_document_only)
    except YamlProblem as exc:
        shift = first_line - 1
        reason = _LINES.sub(lambda m: f"lines {int(m[1]) + shift} and {int(m[2]) + shift}", exc.reason) if shift else exc.reason
        raise YamlProblem(reason, exc.line + shift if exc.line else None) from None


_LINES = re.compile(r"lines (\d+) and (\d+)")


# What sends a document to PyYAML's path rather than yaml_rs's, found by the differential tests
# (tests/test_yamlio_fast.py): a node starting with an anchor, alias or tag (& * !), a literal
# or folded scalar (| >: in flow context libyaml refuses them), a reserved indicator (@ `), a plain
# scalar yaml_rs reads as a number where the core schema keeps text (``1_000``, ``0b1``,
# ``0X1F``, ``-0x1F``, ``.iNf``), directives and document markers; and any character outside
# what libyaml reads as printable (it refuses them; yaml_rs may not), the line breaks of YAML
# 1.1 that 1.2 reads as text (U+0085, U+2028, U+2029), tabs, carriage returns and backslash
# escapes. A node starts after ": ", "- " or "? " or an indentation in block
# context, and after "[", "{" or "," in flow context. Python's regular expressions scan fast
# for a literal prefix, so block documents are searched once per prefix; a document with a
# flow collection gets the one slower pattern.
_NODE = r"(?:[-+]?(?:[0-9.]*_|0[bBoOxX]|\.[iInN])|[&*]\S|[!|>@`])"
_MARKERS = r"\n(?:%|---|\.\.\.| *[-?] +[-?] )"  # (the last: a second "- " or "? " starting a line)
_NOT_FAST_BLOCK = [re.compile(prefix + _NODE) for prefix in (": +", "- +", r"\? +", r"\n *")] + [re.compile(_MARKERS)]
_NOT_FAST_FLOW = re.compile(rf"[ \n\[{{,]{_NODE}|{_MARKERS}")


def _not_fast(text: str, lines: str) -> bool:
    """Whether ``text`` (``lines``: the same after a "\n") has anything where yaml_rs and
    PyYAML's path could differ (see above)."""
    # Characters: Python's "printable" leaves out every character libyaml refuses (controls,
    # DEL, C1 controls, surrogates, U+FFFE/U+FFFF) and U+0085, U+2028, U+2029, U+FEFF, tabs and
    # carriage returns (it leaves out a few more, such as U+00A0: those merely take PyYAML's path).
    if "\\" in text or not text.replace("\n", "").isprintable():
        return True
    if "[" in text or "{" in text:
        return _NOT_FAST_FLOW.search(lines) is not None
    return any(pattern.search(lines) for pattern in _NOT_FAST_BLOCK)


_LONGEST_KEY = 512  # libyaml refuses an implicit key past 1024 characters; longer keys take its path
_BIGGEST_INT_BITS = 4000 * 3  # about 3600 digits: below CPython's int/str limit the slow path hits


# yaml_rs recurses once per nesting level and crashes the process (a segmentation fault) when
# the thread's stack runs out: past about 2,000 levels on an 8 MB stack, below 1,000 on 256 kB.
# So it only gets documents that cannot nest deeper than MAX_DEPTH (PyYAML's path refuses those
# anyway): in block context a level needs more indentation, or the same indentation for a
# mapping's sequence (two levels per step), or a second "- "/"? " on the line (``_NOT_FAST_*``
# send those to PyYAML); each flow bracket adds one. With at most _FAST_FLOW brackets and lines
# indented less than _FAST_INDENT spaces: 2 * (_FAST_INDENT + 1) + 2 + _FAST_FLOW < MAX_DEPTH.
_FAST_INDENT = 20
_FAST_FLOW = 12
# Past this many characters (1 % of the corpus-derived records, those with long curated lists)
# yaml_rs's transient allocations lift an import worker's peak memory by about 4 MB
# (bench/import_bench.py): such documents take PyYAML's path.
_FAST_MAX_CHARS = 8192


def _could_nest_deep(lines: str) -> bool:
    """``lines``: the document after a "\n". Also true for documents past ``_FAST_MAX_CHARS``."""
    return (len(lines) > _FAST_MAX_CHARS or lines.count("[") + lines.count("{") > _FAST_FLOW
            or "\n" + " " * _FAST_INDENT in lines)


class _NotFast(Exception):
    """A value yaml_rs built that PyYAML's path might not build the same."""


def _fast_load(text: str) -> Any:
    """The value of ``text`` through yaml_rs, or ``_NotFast`` when the document has anything
    where the two parsers could differ (``_not_fast``), yaml_rs fails (PyYAML then says what
    is wrong, with its own message and line), or the value holds a non-text key, a key too
    long for libyaml, nesting past ``MAX_DEPTH`` or a huge integer. Otherwise gives exactly
    what the PyYAML path gives (tests/test_yamlio_fast.py compares them over the real corpus
    and generated documents)."""
    lines = "\n" + text
    if yaml_rs is None or _could_nest_deep(lines) or _not_fast(text, lines):
        raise _NotFast
    try:
        value = yaml_rs.loads(text, parse_datetime=False, duplicate_key_policy=yaml_rs.DuplicateKeyPolicy.Error)
    except Exception:  # yaml_rs's errors are not part of its typed API; PyYAML's path reports it
        raise _NotFast from None
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if type(item) is dict:
            if depth > MAX_DEPTH or any(type(k) is not str or len(k) > _LONGEST_KEY for k in item):
                raise _NotFast
            stack.extend((v, depth + 1) for v in item.values() if type(v) in (dict, list, int))
        elif type(item) is list:
            if depth > MAX_DEPTH:
                raise _NotFast
            stack.extend((v, depth + 1) for v in item if type(v) in (dict, list, int))
        elif type(item) is int and item.bit_length() > _BIGGEST_INT_BITS:
            raise _NotFast
    return value


def _load(text: str, first_document_only: bool) -> Any:
    if not first_document_only:  # data files with a stray second document are few: PyYAML's path
        try:
            return _fast_load(text)
        except _NotFast:
            pass
    return _pyyaml_load(text, first_document_only)


def _pyyaml_load(text: str, first_document_only: bool) -> Any:
    """The value of ``text`` through PyYAML (libyaml's parser) with the core-schema constructor;
    raises ``YamlProblem`` with PyYAML's line numbers (``load_yaml`` shifts them)."""
    if _needs_scan(text):
        _scan_events(text)
    try:
        if not first_document_only:
            loader = CoreLoader(text)
            try:
                node = loader.get_single_node()
                return None if node is None else loader.build(node)
            except _Unusual:
                pass  # PyYAML's constructor builds it again, or says what is wrong with it
            finally:
                loader.dispose()
            value = yaml.load(text, Loader=CoreLoader)
            _check_depth(value)
            return value
        docs = list(yaml.load_all(text, Loader=CoreLoader))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        line = mark.line + 1 if mark else None
        if line is None and isinstance(getattr(exc, "position", None), int):  # reader errors: a character offset
            line = text.count("\n", 0, exc.position) + 1
        raise YamlProblem(f"invalid YAML: {problem}", line) from None
    except YamlProblem:
        raise
    except (ValueError, OverflowError) as exc:  # e.g. a float literal too large even for inf
        raise YamlProblem(f"invalid YAML value: {exc}") from None
    if any(d is not None for d in docs[1:]):
        raise YamlProblem("more than one YAML document with content")
    _check_depth(docs[0] if docs else None)
    return docs[0] if docs else None


def dump_yaml(fields: dict[str, Any]) -> str:
    """YAML text that ``load_yaml`` reads back as the same values (strings stay strings).

    Raises ``YamlProblem`` for values no file can hold: nesting deeper than ``MAX_DEPTH``,
    text that is not encodable as UTF-8 (a lone surrogate such as JSON's ``"\\ud800"``).
    """
    _check_depth(fields)
    try:
        text = yaml.dump(fields, Dumper=CoreDumper, sort_keys=False, allow_unicode=True, width=1000)
        text.encode("utf-8")
    except UnicodeError:
        raise YamlProblem("text that is not valid Unicode (a lone surrogate such as \\ud800)") from None
    except yaml.YAMLError as exc:
        raise YamlProblem(f"cannot be written as YAML: {exc}") from None
    return text
