"""Patches: RFC 7386 and RFC 6902 examples, and diffs that apply back to the new document."""

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from danm.patch import (
    PatchError,
    apply_json_patch,
    apply_merge_patch,
    json_patch_diff,
    merge_patch_diff,
)

MERGE_EXAMPLES: list[tuple[Any, Any, Any]] = [  # RFC 7386, appendix A
    ({"a": "b"}, {"a": "c"}, {"a": "c"}),
    ({"a": "b"}, {"b": "c"}, {"a": "b", "b": "c"}),
    ({"a": "b"}, {"a": None}, {}),
    ({"a": "b", "b": "c"}, {"a": None}, {"b": "c"}),
    ({"a": ["b"]}, {"a": "c"}, {"a": "c"}),
    ({"a": "c"}, {"a": ["b"]}, {"a": ["b"]}),
    ({"a": {"b": "c"}}, {"a": {"b": "d", "c": None}}, {"a": {"b": "d"}}),
    ({"a": [{"b": "c"}]}, {"a": [1]}, {"a": [1]}),
    (["a", "b"], ["c", "d"], ["c", "d"]),
    ({"a": "b"}, ["c"], ["c"]),
    ({"a": "foo"}, None, None),
    ({"a": "foo"}, "bar", "bar"),
    ({"e": None}, {"a": 1}, {"e": None, "a": 1}),
    ([1, 2], {"a": "b", "c": None}, {"a": "b"}),
    ({}, {"a": {"bb": {"ccc": None}}}, {"a": {"bb": {}}}),
]


@pytest.mark.parametrize(("target", "patch", "result"), MERGE_EXAMPLES)
def test_rfc7386_examples(target: Any, patch: Any, result: Any) -> None:
    assert apply_merge_patch(target, patch) == result


JSON_PATCH_EXAMPLES: list[tuple[Any, list[dict[str, Any]], Any]] = [  # RFC 6902, appendix A
    ({"foo": "bar"}, [{"op": "add", "path": "/baz", "value": "qux"}], {"baz": "qux", "foo": "bar"}),
    ({"foo": ["bar", "baz"]}, [{"op": "add", "path": "/foo/1", "value": "qux"}], {"foo": ["bar", "qux", "baz"]}),
    ({"baz": "qux", "foo": "bar"}, [{"op": "remove", "path": "/baz"}], {"foo": "bar"}),
    ({"foo": ["bar", "qux", "baz"]}, [{"op": "remove", "path": "/foo/1"}], {"foo": ["bar", "baz"]}),
    ({"baz": "qux", "foo": "bar"}, [{"op": "replace", "path": "/baz", "value": "boo"}], {"baz": "boo", "foo": "bar"}),
    (
        {"foo": {"bar": "baz", "waldo": "fred"}, "qux": {"corge": "grault"}},
        [{"op": "move", "from": "/foo/waldo", "path": "/qux/thud"}],
        {"foo": {"bar": "baz"}, "qux": {"corge": "grault", "thud": "fred"}},
    ),
    ({"foo": ["all", "grass", "cows", "eat"]}, [{"op": "move", "from": "/foo/1", "path": "/foo/3"}], {"foo": ["all", "cows", "eat", "grass"]}),
    ({"baz": "qux", "foo": ["a", 2, "c"]}, [{"op": "test", "path": "/baz", "value": "qux"}, {"op": "test", "path": "/foo/1", "value": 2}], {"baz": "qux", "foo": ["a", 2, "c"]}),
    ({"foo": "bar"}, [{"op": "add", "path": "/child", "value": {"grandchild": {}}}], {"foo": "bar", "child": {"grandchild": {}}}),
    ({"foo": ["bar"]}, [{"op": "add", "path": "/foo/-", "value": ["abc", "def"]}], {"foo": ["bar", ["abc", "def"]]}),
    ({"/": 9, "~1": 10}, [{"op": "test", "path": "/~01", "value": 10}], {"/": 9, "~1": 10}),
    ({"foo": "bar"}, [{"op": "copy", "from": "/foo", "path": "/baz"}], {"foo": "bar", "baz": "bar"}),
]


@pytest.mark.parametrize(("document", "operations", "result"), JSON_PATCH_EXAMPLES)
def test_rfc6902_examples(document: Any, operations: list[dict[str, Any]], result: Any) -> None:
    assert apply_json_patch(document, operations) == result


@pytest.mark.parametrize(
    ("document", "operations", "test_failed"),
    [
        ({"baz": "qux"}, [{"op": "test", "path": "/baz", "value": "bar"}], True),
        ({"foo": "bar"}, [{"op": "add", "path": "/baz/bat", "value": "qux"}], False),
        ({"foo": "bar"}, [{"op": "remove", "path": "/nope"}], False),
        ({"foo": "bar"}, [{"op": "replace", "path": "/nope", "value": 1}], False),
        ({"foo": [1]}, [{"op": "add", "path": "/foo/5", "value": 1}], False),
        ({"foo": [1]}, [{"op": "add", "path": "/foo/01", "value": 1}], False),
        ({"foo": "bar"}, [{"op": "frobnicate", "path": "/foo"}], False),
        ({"foo": "bar"}, [{"op": "add", "path": "/x"}], False),
        ({"foo": "bar"}, [{"op": "add", "path": "foo", "value": 1}], False),
    ],
)
def test_rfc6902_errors(document: Any, operations: list[dict[str, Any]], test_failed: bool) -> None:
    with pytest.raises(PatchError) as raised:
        apply_json_patch(document, operations)
    assert raised.value.test_failed is test_failed


json_leaf = st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=5))
json_value = st.recursive(
    json_leaf,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=3), inner, max_size=3)
    ),
    max_leaves=10,
)
json_object = st.dictionaries(st.text(max_size=3), json_value, max_size=4)
json_object_without_nulls = st.dictionaries(
    st.text(max_size=3),
    st.recursive(
        st.one_of(st.booleans(), st.integers(), st.text(max_size=5)),
        lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=3), inner, max_size=3)),
        max_leaves=10,
    ),
    max_size=4,
)


@given(json_object_without_nulls, json_object_without_nulls)
def test_merge_diff_applies_to_the_new_document(old: dict[str, Any], new: dict[str, Any]) -> None:
    assert apply_merge_patch(old, merge_patch_diff(old, new)) == new


@given(json_object, json_object)
def test_json_diff_applies_to_the_new_document(old: dict[str, Any], new: dict[str, Any]) -> None:
    assert apply_json_patch(old, json_patch_diff(old, new)) == new


def test_json_diff_reaches_into_list_items() -> None:
    old = {"items": [{"name": "a", "alloc": "x", "extra": 1}, {"name": "b"}]}
    new = {"items": [{"name": "a", "alloc": "y", "extra": 1}, {"name": "b"}]}
    assert json_patch_diff(old, new) == [{"op": "add", "path": "/items/0/alloc", "value": "y"}]


def test_json_diff_creates_missing_parents() -> None:
    """A modelled default ({}) may be absent from the stored object: add it whole."""
    operations = json_patch_diff({"spec": {"Options": {}}}, {"spec": {"Options": {"alloc": "gA=="}}})
    assert operations == [{"op": "add", "path": "/spec/Options", "value": {"alloc": "gA=="}}]
    assert apply_json_patch({"spec": {}}, operations) == {"spec": {"Options": {"alloc": "gA=="}}}


def test_appliers_do_not_change_their_inputs() -> None:
    target = {"a": {"b": [1]}}
    apply_merge_patch(target, {"a": {"b": [2]}})
    apply_json_patch(target, [{"op": "add", "path": "/a/b/-", "value": 3}])
    assert target == {"a": {"b": [1]}}
