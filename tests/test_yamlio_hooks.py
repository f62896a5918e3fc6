"""``feeds.yamlio`` replaces PyYAML's per-node path-resolver hooks with no-op builtins (this
schema has no path resolvers). Generated front matter loads to the same values, or fails the
same way, as with PyYAML's own hooks."""
from __future__ import annotations

import yaml
from hypothesis import given, settings

from feeds.yamlio import CoreLoader, YamlProblem, load_yaml

from .test_records import front_matter


class HookedLoader(CoreLoader):
    """The same loader with PyYAML's own ``descend_resolver``/``ascend_resolver``."""

    descend_resolver = yaml.resolver.BaseResolver.descend_resolver
    ascend_resolver = yaml.resolver.BaseResolver.ascend_resolver


def outcome(text: str, loader: type) -> object:
    try:
        return ("value", yaml.load(text, Loader=loader))
    except (yaml.YAMLError, YamlProblem, ValueError, OverflowError) as exc:
        return ("error", type(exc).__name__, str(exc))


@settings(max_examples=400, deadline=None)
@given(text=front_matter())
def test_builtin_hooks_load_what_pyyaml_hooks_load(text):
    body = text.removeprefix("---\n").removesuffix("---\n")
    assert outcome(body, CoreLoader) == outcome(body, HookedLoader)


def test_the_hooks_are_the_builtins_and_a_record_still_loads():
    assert CoreLoader.descend_resolver is slice and CoreLoader.ascend_resolver is tuple
    assert load_yaml("a: [1, {b: true}]\nc: x\n") == {"a": [1, {"b": True}], "c": "x"}
