"""``feeds.yamlio`` loads most documents through yaml_rs (a Rust YAML 1.2 parser) and the rest
through PyYAML with the core-schema constructor. Differential tests: wherever the fast path
gives a value, it is exactly PyYAML's value (types, key order, NaN and -0.0 included, compared
by ``repr``); everything else falls back, so errors keep PyYAML's message and line. Over the
real corpus (every record's front matter and every data file) and generated documents."""
from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from feeds import yamlio
from feeds.errors import RecordError
from feeds.records import split_front_matter
from feeds.yamlio import YamlProblem, load_yaml

from .test_records import YAML_WORDS, front_matter

SHARED = Path(os.environ.get("TOPICFEED_SHARED", Path(__file__).resolve().parents[2] / "shared"))


def slow(text: str) -> tuple:
    try:
        return ("value", repr(yamlio._pyyaml_load(text, False)))
    except YamlProblem as exc:
        return ("error", exc.reason, exc.line)


def fast(text: str) -> tuple | None:
    """The fast path's outcome, or None when it leaves the document to PyYAML."""
    try:
        return ("value", repr(yamlio._fast_load(text)))
    except yamlio._NotFast:
        return None


def assert_same(text: str) -> bool:
    """Same value through both paths, or a fallback; whether the fast path took it."""
    got = fast(text)
    if got is not None:
        assert got == slow(text), text
    return got is not None


def corpus_documents() -> list[tuple[str, str]]:
    root = SHARED / "corpus"
    if not (root / "MANIFEST.tsv").exists():
        pytest.skip(f"shared corpus not found at {root} (set TOPICFEED_SHARED to the shared/ folder)")
    docs = []
    for path in sorted(root.rglob("*")):
        if path.suffix == ".md" and "_news" in path.parts:
            text = path.read_text(encoding="utf-8-sig")
            try:
                docs.append((str(path), split_front_matter(text, str(path))[0]))
            except RecordError:
                continue
        elif path.suffix in (".yml", ".yaml"):
            docs.append((str(path), path.read_text(encoding="utf-8-sig")))
    return docs


def test_every_corpus_document_loads_the_same_and_most_take_the_fast_path():
    docs = corpus_documents()
    taken = [name for name, text in docs if assert_same(text)]
    records = [name for name, _ in docs if name.endswith(".md")]
    assert len(records) >= 100
    # the corpus' own records: most must take the fast path, or it is not worth having
    assert len([n for n in taken if n.endswith(".md")]) >= 0.5 * len(records), (len(taken), len(docs))


# Plain scalars near the number forms where YAML 1.1, the 1.2 core schema and yaml_rs differ.
NUMBERISH = st.text(alphabet="0123456789._+-eExXoObBiInNaAfFtT~", min_size=1, max_size=7)
SCALARS = st.one_of(NUMBERISH, YAML_WORDS, st.text(max_size=10),
                    st.sampled_from(["&a x", "*a", "!!str 1", "!x y", "& b", "a * b", "x_1", "1_0", ".iNf", "0B1",
                                     "-0x1F", "'1_0'", '"a\\tb"', "|\n  x", ">\n  x\n  y", "a #c", "[1_0]", "{a: 0b1}",
                                     "", "~", "a: b", "- x", "? x", "%x", "---", "...", "\t1", "1\r", "@x", "`x", "| x",
                                     "- - x", "? - x", "\u00a0x", "x\u2028y", "\x85"]))
KEYS = st.one_of(st.text(alphabet="abk_1.", min_size=1, max_size=4), YAML_WORDS, NUMBERISH)


@st.composite
def documents(draw) -> str:
    """Block and flow documents assembled from raw scalar text (so nothing quotes them), with
    repeated keys, nesting, comments and indentation varied."""
    lines = []
    for _ in range(draw(st.integers(1, 6))):
        key, value = draw(KEYS), draw(SCALARS)
        shape = draw(st.integers(0, 5))
        if shape == 0:
            lines.append(f"{key}: {value}")
        elif shape == 1:
            lines.append(f"{key}:\n" + "\n".join(f"- {draw(SCALARS)}" for _ in range(draw(st.integers(0, 3)))))
        elif shape == 2:
            lines.append(f"{key}: [{', '.join(draw(st.lists(SCALARS, max_size=3)))}]")
        elif shape == 3:
            lines.append(f"{key}:\n  {draw(KEYS)}: {value}\n  {draw(KEYS)}: {draw(SCALARS)}")
        elif shape == 4:
            lines.append(f"{key}: {{{draw(KEYS)}: {value}}}")
        else:
            lines.append(f"{key}:  {value}  # note")
    return "\n".join(lines) + draw(st.sampled_from(["", "\n", "\n\n"]))


@settings(max_examples=1500, deadline=None)
@given(text=documents())
def test_generated_documents_load_the_same_through_both_paths(text):
    assert_same(text)


@settings(max_examples=400, deadline=None)
@given(text=front_matter())
def test_generated_front_matter_loads_the_same_through_both_paths(text):
    assert_same(text.removeprefix("---\n").removesuffix("---\n"))


@pytest.mark.parametrize("text", [
    "a: 1_000", "a: 0b101", "a: 0X1F", "a: +0x10", "a: -0o7", "a: .iNf", "a: [1_0]", "a: &x 1\nb: *x", "a: !!set {x}",
    "a: !foo x", "a: 1\na: 2", "1: x", "? [a]\n: 1", "a: 1\n---\nb: 2", "a: \"\\x01\"", "a: x\n\tb: y", "a: 1\r\nb: 2",
    "a:\n" + "".join(" " * i + "b:\n" for i in range(1, 1500)), "- - x", "a:\n  - ? - x", "a: " + "[" * 13 + "]" * 13,
    "a: \u00a0x", "a: x\ufeff", "a: |\n  x",
])
def test_documents_where_the_parsers_differ_fall_back_to_pyyaml(text):
    assert fast(text) is None


def nested_documents(levels: int) -> list[str]:
    """Block mappings, block sequences, flow sequences and mixed, each nested ``levels`` deep."""
    return ["".join(" " * i + "a:\n" for i in range(levels)), "- " * levels + "x\n", "[" * levels + "]" * levels,
            "a:\n" + "".join(" " * (2 * i) + "- b:\n" for i in range(levels // 2))]


def test_documents_nested_deeper_than_the_limit_never_reach_yaml_rs_in_a_small_thread_stack():
    # yaml_rs recurses per level and a stack overflow kills the process: deep documents must
    # fall back before it runs, also in a thread with a small stack (a server's worker thread)
    deep = nested_documents(3000)
    outcomes: list = []
    threading.stack_size(256 * 1024)
    try:
        worker = threading.Thread(target=lambda: outcomes.extend(fast(text) for text in deep))
        worker.start()
        worker.join()
    finally:
        threading.stack_size(0)
    assert outcomes == [None] * len(deep)  # each left to PyYAML's path, which refuses it
    for text in deep:  # libyaml 0.2.5's own limit (PyYAML >= 6.0.4 wheels) may speak first at 1000 levels
        with pytest.raises(YamlProblem, match="nested deeper than 64 levels|exceeded maximum nesting depth"):
            load_yaml(text)
    for text in nested_documents(500):  # under libyaml's limit: this loader's own rule and words
        with pytest.raises(YamlProblem, match="nested deeper than 64 levels"):
            load_yaml(text)


def test_errors_still_name_the_line_and_problem():
    with pytest.raises(YamlProblem) as exc:
        load_yaml("a: 1\nb: 2\na: 3\n", first_line=2)
    assert exc.value.reason == "key 'a' is written twice (lines 2 and 4): remove one" and exc.value.line == 4
    with pytest.raises(YamlProblem, match="aliases"):
        load_yaml("a: &x 1\nb: *x\n")
    assert load_yaml("a: 1_000\nb: 0o17\nc: [x, 1.5]\n") == {"a": "1_000", "b": 15, "c": ["x", 1.5]}
