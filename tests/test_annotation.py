"""The danm.io/interfaces pod annotation: what the original accepted still works; the rest is
refused with the entry index and the key named."""

import json

import pytest

from danm.annotation import AnnotationError, parse_interfaces
from danm.types import InterfaceRequest
from testlib import FIXTURES


def test_capitalised_keys_are_accepted_as_the_original_did() -> None:
    assert parse_interfaces('[{"Network":"n","IP":"dynamic"}]') == [
        InterfaceRequest(network="n", ip="dynamic")
    ]


@pytest.mark.parametrize(
    ("key", "field"),
    [
        ("NETWORK", "network"),
        ("tenantnetwork", "tenant_network"),
        ("TenantNetwork", "tenant_network"),
        ("CLUSTERNETWORK", "cluster_network"),
        ("clusterNetwork", "cluster_network"),
    ],
)
def test_network_keys_fold_case(key: str, field: str) -> None:
    (request,) = parse_interfaces(json.dumps([{key: "n"}]))
    assert getattr(request, field) == "n"


def test_all_public_keys() -> None:
    value = json.dumps(
        [
            {
                "clusterNetwork": "ext",
                "Ip": "10.20.0.40/24",
                "IP6": "2001:db8::5",
                "PRoutes": {"10.70.0.0/16": "10.20.0.254"},
                "proutes6": {"2001:db8:70::/48": "2001:db8::1"},
            }
        ]
    )
    assert parse_interfaces(value) == [
        InterfaceRequest(
            cluster_network="ext",
            ip="10.20.0.40/24",
            ip6="2001:db8::5",
            proutes={"10.70.0.0/16": "10.20.0.254"},
            proutes6={"2001:db8:70::/48": "2001:db8::1"},
        )
    ]


@pytest.mark.parametrize("key", ["Device", "device", "SequenceId", "sequenceid", "DefaultIfaceName"])
def test_internal_fields_are_refused_with_index_and_key(key: str) -> None:
    value = json.dumps([{"network": "a", "ip": "dynamic"}, {"network": "n", key: "x"}])
    with pytest.raises(AnnotationError) as raised:
        parse_interfaces(value)
    assert raised.value.index == 1 and raised.value.key == key
    assert "entry 1" in str(raised.value) and repr(key) in str(raised.value)
    assert "internal" in str(raised.value)


def test_issue_example_device_key() -> None:
    with pytest.raises(AnnotationError, match=r"entry 0 key 'Device'"):
        parse_interfaces('[{"network":"n","Device":"x"}]')


def test_unknown_key_is_refused() -> None:
    with pytest.raises(AnnotationError, match=r"entry 0 key 'ipv4': is not a known key") as raised:
        parse_interfaces('[{"network":"n","ipv4":"dynamic"}]')
    assert raised.value.index == 0 and raised.value.key == "ipv4"


@pytest.mark.parametrize(
    ("entry", "found"),
    [
        ({"ip": "dynamic"}, 0),
        ({"network": "", "ip": "dynamic"}, 0),
        ({"network": "a", "tenantNetwork": "b"}, 2),
        ({"network": "a", "tenantNetwork": "b", "clusterNetwork": "c"}, 3),
    ],
)
def test_exactly_one_network_reference(entry: dict[str, str], found: int) -> None:
    with pytest.raises(AnnotationError, match=f"exactly one network.*found {found}") as raised:
        parse_interfaces(json.dumps([{"network": "ok"}, entry]))
    assert raised.value.index == 1


def test_keys_differing_only_in_case_are_ambiguous() -> None:
    with pytest.raises(AnnotationError, match=r"entry 0 key 'Network': repeats 'network'"):
        parse_interfaces('[{"network":"a","Network":"b"}]')


@pytest.mark.parametrize(
    ("entry", "key"),
    [
        ({"network": "n", "ip": "10.0.0.300"}, "ip"),
        ({"network": "n", "ip": "2001:db8::1"}, "ip"),
        ({"network": "n", "ip6": "10.0.0.1"}, "ip6"),
        ({"network": "n", "ip": "Dynamic"}, "ip"),
        ({"network": "n", "proutes": {"10.0.0.0/33": "10.0.0.1"}}, "proutes"),
        ({"network": "n", "proutes": {"10.1.0.0/16": "2001:db8::1"}}, "proutes"),
        ({"network": "n", "proutes6": {"10.1.0.0/16": "10.0.0.1"}}, "proutes6"),
        ({"network": "n", "ip": 5}, "ip"),
        ({"network": 5}, "network"),
        ({"network": "n", "proutes": ["10.0.0.0/8"]}, "proutes"),
    ],
)
def test_bad_values_name_index_and_key(entry: dict[str, object], key: str) -> None:
    with pytest.raises(AnnotationError) as raised:
        parse_interfaces(json.dumps([entry]))
    assert (raised.value.index, raised.value.key) == (0, key)


def test_static_addresses_with_or_without_prefix() -> None:
    requests = parse_interfaces(
        '[{"network":"a","ip":"10.0.0.5/24","ip6":"2001:db8::5/64"},{"network":"b","ip":"10.0.0.6","ip6":"none"}]'
    )
    assert [(r.ip, r.ip6) for r in requests] == [("10.0.0.5/24", "2001:db8::5/64"), ("10.0.0.6", "none")]


@pytest.mark.parametrize("value", ["[]", "null", " [ ] "])
def test_no_interfaces(value: str) -> None:
    assert parse_interfaces(value) == []


@pytest.mark.parametrize("value", ["", "{", '{"network":"n"}', '["n"]', "[[]]"])
def test_not_a_list_of_objects(value: str) -> None:
    with pytest.raises(AnnotationError, match="danm.io/interfaces: must be a JSON list of objects"):
        parse_interfaces(value)


def test_null_values_mean_unset() -> None:
    assert parse_interfaces('[{"network":"n","ip":null,"proutes":null}]') == [InterfaceRequest(network="n")]


def test_fixture() -> None:
    requests = parse_interfaces((FIXTURES / "annotation.json").read_text())
    assert [r.network or r.cluster_network for r in requests] == ["internal", "external"]
