"""Property tests of the signing facade: round trips, and any single-byte change is rejected."""
from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from server.signing import (
    ADMIN_TOKEN, CLIENT_TOKEN, canonical_bytes, client_secret, sign, sign_object, unsign, verify_object,
)

SECRET = "s" * 40
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53) + 1, 2**53 - 1) | st.text(),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=20,
)
objects = st.dictionaries(st.text(max_size=10).filter(lambda k: k != "secured"), json_values, min_size=1, max_size=6)


@settings(max_examples=200, deadline=None)
@given(objects)
def test_sign_verify_round_trip(obj):
    signed = sign_object(obj, SECRET)
    assert verify_object(signed, SECRET)
    assert verify_object(json.loads(json.dumps(signed)), SECRET)  # survives a JSON round trip
    assert not verify_object(signed, "t" * 40)


@settings(max_examples=100, deadline=None)
@given(objects, st.data())
def test_any_single_byte_change_is_rejected(obj, data):
    signed = sign_object(obj, SECRET)
    text = json.dumps(signed, ensure_ascii=False)
    i = data.draw(st.integers(0, len(text) - 1))
    replacement = data.draw(st.characters(codec="utf-8").filter(lambda c: c != text[i]))
    try:
        mutated = json.loads(text[:i] + replacement + text[i + 1:])
    except ValueError:
        return  # no longer JSON: nothing to verify
    if not isinstance(mutated, dict) or mutated == signed:
        return  # e.g. whitespace between tokens: the same object
    assert not verify_object(mutated, SECRET)


def test_floats_are_refused():
    with pytest.raises(TypeError, match=r"\$.a\[0\]"):
        canonical_bytes({"a": [1.5]})


def test_max_age_and_rotation():
    signed = sign_object({"x": 1}, [SECRET, "n" * 40])
    assert verify_object(signed, ["n" * 40]) and not verify_object(signed, [SECRET])
    old = sign_object({"x": 1}, SECRET, timestamp=1_000_000_000)
    assert verify_object(old, SECRET) and not verify_object(old, SECRET, max_age=60)
    future = sign_object({"x": 1}, SECRET, timestamp=4_000_000_000)
    assert not verify_object(future, SECRET, max_age=60)


def test_token_namespaces_do_not_mix():
    keys = ["k" * 40]
    token = sign("c_1", CLIENT_TOKEN, keys)
    assert unsign(token, CLIENT_TOKEN, keys) == "c_1"
    from itsdangerous import BadSignature
    with pytest.raises(BadSignature):
        unsign(token, ADMIN_TOKEN, keys)


def test_client_secrets_differ_per_client_and_key():
    assert client_secret("a" * 40, "c1") != client_secret("a" * 40, "c2") != client_secret("b" * 40, "c1")
