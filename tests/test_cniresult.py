"""CNI results: parse any version, render per version, merge, negotiate the version."""

import json
from typing import Any

import pytest

from danm.cni import ERR_INCOMPATIBLE_VERSION, SPEC_VERSIONS, CniFailure
from danm.cniresult import (
    Dns,
    Interface,
    IpConfig,
    Result,
    ResultDecodeError,
    Route,
    merge,
    negotiate_version,
    parse_result,
    render,
    to_endpoint_addresses,
)
from testlib import FIXTURES, canonical, load_fixture

FIXTURE_VERSIONS = ["0.3.1", "0.4.0", "1.0.0", "1.1.0"]


def fixture_bytes(version: str) -> bytes:
    return (FIXTURES / f"cni_result_{version}.json").read_bytes()


def rendered(result: Result, version: str) -> Any:
    return json.loads(render(result, version))


# --- round trips and conversions -------------------------------------------------------------


@pytest.mark.parametrize("version", FIXTURE_VERSIONS)
def test_every_fixture_round_trips_in_its_own_version(version: str) -> None:
    result = parse_result(fixture_bytes(version))
    assert canonical(rendered(result, version)) == canonical(load_fixture(f"cni_result_{version}.json"))


@pytest.mark.parametrize("source", FIXTURE_VERSIONS)
@pytest.mark.parametrize("target", SPEC_VERSIONS)
def test_every_fixture_renders_in_every_version_and_parses_back(source: str, target: str) -> None:
    document = rendered(parse_result(fixture_bytes(source)), target)
    assert document["cniVersion"] == target
    for ip in document["ips"]:
        if target.startswith("0."):
            assert ip["version"] == ("6" if ":" in ip["address"] else "4")
        else:
            assert "version" not in ip
    # rendering what was parsed from the rendering is stable
    again = rendered(parse_result(json.dumps(document).encode()), target)
    assert canonical(again) == canonical(document)


def test_v03_ips_lose_their_version_field_in_1_0() -> None:
    document = rendered(parse_result(fixture_bytes("0.3.1")), "1.0.0")
    assert document["ips"] == [
        {"address": "10.244.1.5/24", "gateway": "10.244.1.1", "interface": 0},
        {"address": "10.100.20.11/24", "interface": 1},
        {"address": "2001:db8:20::5/64", "interface": 1},
    ]
    assert document["dns"] == {}


def test_v1_ips_gain_a_version_derived_from_the_address_in_0_4() -> None:
    document = rendered(parse_result(fixture_bytes("1.0.0")), "0.4.0")
    assert [(ip["version"], ip["address"]) for ip in document["ips"]] == [
        ("4", "10.244.1.5/24"),
        ("6", "2001:db8::5/64"),
    ]


@pytest.mark.parametrize("target", ["0.3.0", "0.3.1", "0.4.0", "1.0.0"])
def test_1_1_fields_are_dropped_for_older_versions(target: str) -> None:
    document = rendered(parse_result(fixture_bytes("1.1.0")), target)
    assert document["interfaces"] == [
        {"name": "eth0", "mac": "0a:58:0a:f4:01:05", "sandbox": "/var/run/netns/cni-1"},
        {"name": "vhost0"},
    ]
    assert document["routes"] == [{"dst": "0.0.0.0/0", "gw": "10.244.1.1"}]


def test_1_1_fields_are_parsed_and_kept_for_1_1() -> None:
    result = parse_result(fixture_bytes("1.1.0"))
    assert result.interfaces[0] == Interface(
        name="eth0", mac="0a:58:0a:f4:01:05", sandbox="/var/run/netns/cni-1", mtu=1450, pci_id="0000:af:06.3"
    )
    assert result.interfaces[1].socket_path == "/var/run/vhost/sock0"
    assert result.routes == [
        Route(dst="0.0.0.0/0", gw="10.244.1.1", mtu=1400, advmss=1360, priority=100, table=0, scope=0)
    ]


def test_absent_dns_stays_absent_and_empty_lists_are_omitted() -> None:
    result = parse_result(b'{"cniVersion":"1.0.0","ips":[{"address":"10.0.0.2/24"}]}')
    assert result.dns is None
    assert rendered(result, "1.0.0") == {"cniVersion": "1.0.0", "ips": [{"address": "10.0.0.2/24"}]}
    assert rendered(Result(), "0.3.1") == {"cniVersion": "0.3.1"}


def test_render_refuses_a_version_danm_does_not_speak() -> None:
    with pytest.raises(CniFailure) as caught:
        render(Result(), "0.2.0")
    assert caught.value.code == ERR_INCOMPATIBLE_VERSION


# --- legacy 0.1.0 / 0.2.0 --------------------------------------------------------------------

LEGACY_020 = {
    "cniVersion": "0.2.0",
    "ip4": {
        "ip": "10.1.2.3/24",
        "gateway": "10.1.2.1",
        "routes": [{"dst": "0.0.0.0/0", "gw": "10.1.2.1"}],
    },
    "ip6": {"ip": "fd00::3/64", "routes": [{"dst": "::/0"}]},
    "dns": {"nameservers": ["10.1.0.10"], "domain": "example.org"},
}


def test_legacy_0_2_0_result_is_converted_like_libcni() -> None:
    result = parse_result(json.dumps(LEGACY_020).encode())
    assert result == Result(
        interfaces=[],
        ips=[IpConfig(address="10.1.2.3/24", gateway="10.1.2.1"), IpConfig(address="fd00::3/64")],
        routes=[Route(dst="0.0.0.0/0", gw="10.1.2.1"), Route(dst="::/0")],
        dns=Dns(nameservers=["10.1.0.10"], domain="example.org"),
    )
    assert rendered(result, "0.3.1") == {
        "cniVersion": "0.3.1",
        "ips": [
            {"version": "4", "address": "10.1.2.3/24", "gateway": "10.1.2.1"},
            {"version": "6", "address": "fd00::3/64"},
        ],
        "routes": [{"dst": "0.0.0.0/0", "gw": "10.1.2.1"}, {"dst": "::/0"}],
        "dns": {"nameservers": ["10.1.0.10"], "domain": "example.org"},
    }
    assert to_endpoint_addresses(result) == ("10.1.2.3/24", "fd00::3/64")


def test_missing_cni_version_is_read_as_0_1_0() -> None:
    result = parse_result(b'{"ip4":{"ip":"192.168.5.9/16"}}')
    assert result.ips == [IpConfig(address="192.168.5.9/16")]
    assert result.dns is None


# --- bad input -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"  \n",
        b"not json",
        b"[]",
        b'{"cniVersion": 1}',
        b'{"cniVersion":"9.9.9"}',
        b'{"cniVersion":"1.0.0","ips":[{"gateway":"10.0.0.1"}]}',
        b'{"cniVersion":"1.0.0","ips":[{"address":"10.0.0.300/24"}]}',
        b'{"cniVersion":"1.0.0","ips":[{"address":"10.0.0.3"}]}',
        b'{"cniVersion":"1.0.0","ips":[{"address":"10.0.0.3/24","gateway":"bogus"}]}',
        b'{"cniVersion":"0.4.0","interfaces":[{"name":"eth0"}],"ips":[{"version":"4","address":"10.0.0.3/24","interface":1}]}',
        b'{"cniVersion":"0.2.0","ip4":{"gateway":"10.0.0.1"}}',
        b'{"cniVersion":"0.2.0","ip4":{"ip":"10.0.0.2/24","routes":[{"gw":"10.0.0.1"}]}}',
    ],
)
def test_empty_or_invalid_output_is_a_decode_error(data: bytes) -> None:
    with pytest.raises(ResultDecodeError):
        parse_result(data)


# --- merge -----------------------------------------------------------------------------------

NETNS = "/var/run/netns/cni-42"


def delegate_result() -> Result:
    """A bridge-like delegate: host-side veth first, the pod interface second."""
    return Result(
        interfaces=[Interface(name="veth1234"), Interface(name="net1", mac="aa:bb", sandbox="/proc/1/ns/net")],
        ips=[IpConfig(address="10.10.0.5/24", gateway="10.10.0.1", interface=1)],
        routes=[Route(dst="10.20.0.0/16", gw="10.10.0.1")],
        dns=Dns(nameservers=["10.96.0.10", "10.96.0.11"], search=["a.local"], options=["ndots:5"]),
    )


def ipvlan_result(ifname: str, v4: str, v6: str = "") -> Result:
    """danm's own IPVLAN result: one interface, IPs without an index."""
    ips = [IpConfig(address=v4)] + ([IpConfig(address=v6)] if v6 else [])
    return Result(interfaces=[Interface(name=ifname)], ips=ips)


def test_merge_puts_eth0_first_renumbers_and_sets_the_sandbox() -> None:
    net1 = delegate_result()
    eth0 = ipvlan_result("eth0", "10.0.0.7/24", "fd00::7/64")
    net2 = Result(
        interfaces=[Interface(name="net2", sandbox="/elsewhere")],
        ips=[IpConfig(address="192.168.1.2/24", interface=0)],
        dns=Dns(nameservers=["10.96.0.11", "1.1.1.1"], domain="pod.local", search=["a.local", "b.local"]),
    )
    merged = merge([("net1", net1), ("eth0", eth0), ("net2", net2)], NETNS)

    assert [i.name for i in merged.interfaces] == ["eth0", "veth1234", "net1", "net2"]
    assert [i.sandbox for i in merged.interfaces] == [NETNS, "", NETNS, NETNS]
    assert merged.interfaces[2].mac == "aa:bb"
    assert [(ip.address, ip.interface) for ip in merged.ips] == [
        ("10.0.0.7/24", 0),
        ("fd00::7/64", 0),
        ("10.10.0.5/24", 2),  # was 1 in the delegate's own result
        ("192.168.1.2/24", 3),  # was 0
    ]
    assert merged.ips[2].gateway == "10.10.0.1"
    assert merged.routes == [Route(dst="10.20.0.0/16", gw="10.10.0.1")]
    assert merged.dns == Dns(
        nameservers=["10.96.0.10", "10.96.0.11", "1.1.1.1"],
        domain="pod.local",
        search=["a.local", "b.local"],
        options=["ndots:5"],
    )
    # inputs untouched
    assert net1 == delegate_result()
    assert eth0.interfaces[0].sandbox == ""

    document = rendered(merged, "0.3.1")
    assert [ip["interface"] for ip in document["ips"]] == [0, 0, 2, 3]
    assert parse_result(render(merged, "1.1.0")) == merged


def test_merge_keeps_the_given_order_without_eth0_and_always_has_dns() -> None:
    merged = merge([("b", ipvlan_result("b", "10.0.0.2/24")), ("a", ipvlan_result("a", "10.0.0.1/24"))], NETNS)
    assert [i.name for i in merged.interfaces] == ["b", "a"]
    assert [ip.interface for ip in merged.ips] == [0, 1]
    assert rendered(merged, "0.3.1")["dns"] == {}
    assert rendered(merge([], NETNS), "0.3.1") == {"cniVersion": "0.3.1", "dns": {}}


def test_merge_leaves_an_ip_unindexed_when_its_result_has_no_such_interface() -> None:
    merged = merge([("eth0", Result(ips=[IpConfig(address="10.0.0.9/24")]))], NETNS)
    assert merged.ips == [IpConfig(address="10.0.0.9/24")]


def test_merge_rejects_an_out_of_range_index() -> None:
    broken = Result(interfaces=[Interface(name="eth0")], ips=[IpConfig(address="10.0.0.9/24", interface=3)])
    with pytest.raises(ValueError):
        merge([("eth0", broken)], NETNS)


# --- endpoint addresses ----------------------------------------------------------------------


def test_endpoint_addresses_are_the_last_of_each_family() -> None:
    assert to_endpoint_addresses(parse_result(fixture_bytes("0.3.1"))) == ("10.100.20.11/24", "2001:db8:20::5/64")
    assert to_endpoint_addresses(parse_result(fixture_bytes("1.1.0"))) == ("10.244.1.5/24", "")
    assert to_endpoint_addresses(Result()) == ("", "")


# --- version negotiation ---------------------------------------------------------------------


@pytest.mark.parametrize("version", SPEC_VERSIONS)
def test_a_supported_cni_version_is_used_as_is(version: str) -> None:
    assert negotiate_version(version, None) == version
    assert negotiate_version(version, ["1.1.0"]) == version  # the runtime already chose


def test_without_cni_version_the_highest_supported_of_cni_versions_is_used() -> None:
    assert negotiate_version("", ["0.4.0", "1.0.0", "2.0.0", "0.2.0"]) == "1.0.0"
    assert negotiate_version("", ["1.1.0", "0.3.1"]) == "1.1.0"


@pytest.mark.parametrize(
    ("version", "versions", "named"),
    [
        ("0.2.0", None, "0.2.0"),
        ("2.0.0", ["1.1.0"], "2.0.0"),
        ("", ["0.1.0", "2.0.0"], "2.0.0"),
        ("", None, "no cniVersion"),
        ("", [], "no cniVersion"),
    ],
)
def test_unsupported_versions_fail_with_code_1_naming_them(version: str, versions: list[str] | None, named: str) -> None:
    with pytest.raises(CniFailure) as caught:
        negotiate_version(version, versions)
    assert caught.value.code == ERR_INCOMPATIBLE_VERSION
    assert named in caught.value.msg
