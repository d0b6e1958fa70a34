"""Label syntax and selectors, with the semantics kube-apiserver gives ?labelSelector=."""

import pytest

from danm.labels import (
    SelectorError,
    label_key_error,
    label_value_error,
    parse_selector,
    selector_from_structure,
)

LABELS = {"app": "web", "tier": "front", "env": "prod", "replicas": "3", "danm.io/network": "ext"}


@pytest.mark.parametrize(
    ("selector", "matches"),
    [
        ("", True),
        ("app=web", True),
        ("app==web", True),
        ("app = web", True),
        ("app=db", False),
        ("app!=db", True),
        ("missing!=x", True),
        ("app!=web", False),
        ("app in (web, db)", True),
        ("app in (db)", False),
        ("missing in (a)", False),
        ("app notin (db,cache)", True),
        ("missing notin (a)", True),
        ("app notin (web)", False),
        ("app", True),
        ("missing", False),
        ("!missing", True),
        ("!app", False),
        ("replicas>2", True),
        ("replicas<3", False),
        ("app>1", False),
        ("missing<5", False),
        ("app=web,tier=front", True),
        ("app=web,tier=back", False),
        ("app in (web,db),env notin (dev),!canary,danm.io/network=ext", True),
        ("  app  ,  env==prod ", True),
    ],
)
def test_string_selectors(selector: str, matches: bool) -> None:
    assert parse_selector(selector).matches(LABELS) is matches


@pytest.mark.parametrize(
    "selector",
    [
        "app=web,",
        ",app",
        "app in ()",
        "app in (web",
        "app in web",
        "app===web",
        "=web",
        "app>x",
        "-bad=1",
        "app=-bad",
        "a/b/c=1",
        "app=" + "x" * 64,
        "Upper.Case/name=1",
        "app web",
        "!",
    ],
)
def test_malformed_selectors(selector: str) -> None:
    with pytest.raises(SelectorError):
        parse_selector(selector)


def test_empty_selector_matches_objects_without_labels() -> None:
    assert parse_selector("").matches(None)
    assert parse_selector("!a").matches(None)
    assert not parse_selector("a").matches(None)


@pytest.mark.parametrize(
    ("key", "valid"),
    [
        ("app", True),
        ("danm.io/network", True),
        ("kubernetes.io/metadata.name", True),
        ("a" * 63, True),
        ("a" * 64, False),
        ("/app", False),
        ("Danm.io/x", False),
        ("x/", False),
        ("-app", False),
        ("app_", False),
        ("a.b-c_d", True),
        ("p" * 254 + "/x", False),
    ],
)
def test_label_keys(key: str, valid: bool) -> None:
    assert (label_key_error(key) is None) is valid


@pytest.mark.parametrize(
    ("value", "valid"),
    [("", True), ("web", True), ("a" * 63, True), ("a" * 64, False), ("a b", False), ("-a", False), ("a.b_c-d", True)],
)
def test_label_values(value: str, valid: bool) -> None:
    assert (label_value_error(value) is None) is valid


def test_structured_selectors() -> None:
    selector = selector_from_structure(
        {"app": "web"},
        [
            {"key": "env", "operator": "In", "values": ["prod", "staging"]},
            {"key": "canary", "operator": "DoesNotExist"},
            {"key": "tier", "operator": "Exists"},
            {"key": "zone", "operator": "NotIn", "values": ["a"]},
        ],
    )
    assert selector.matches(LABELS)
    assert not selector.matches(dict(LABELS, canary="yes"))
    assert selector_from_structure(None, None).matches({})


@pytest.mark.parametrize(
    "expression",
    [
        {"key": "a", "operator": "In", "values": []},
        {"key": "a", "operator": "Exists", "values": ["x"]},
        {"key": "a", "operator": "Gt", "values": ["1"]},
        {"key": "-a", "operator": "Exists"},
    ],
)
def test_bad_structured_selectors(expression: dict[str, object]) -> None:
    with pytest.raises(SelectorError):
        selector_from_structure(None, [expression])
