"""danm.netlink.create_dpdk_dummy (reference §3.6 step 1) in a real kernel with dummy and 8021q
links (user-mode Linux; the host kernel has neither).

Both variants are read back from the kernel inside the pod namespace: names, kinds, the VLAN id
and its lower link, MAC, alias, up/down, the dummy's IPv6 sysctl; then the caller's configure()
brings the interface up with its address. Failures must leave nothing of ours behind. Few tests:
every guest process start and import is slow.
"""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Iterator

import pytest
from pyroute2 import IPRoute, netns

from danm.netlink import LinkError, PodLink, configure, create_dpdk_dummy

NETNS_DIR = "/var/run/netns"
PCI = "0000:03:02.1"
VF_MAC = "FA:16:3E:AA:BB:01"  # as a VF table may spell it; the kernel reports lower case


def links(namespace: str) -> dict[str, dict[str, object]]:
    """name -> what the kernel says of every link in the namespace."""
    found: dict[str, dict[str, object]] = {}
    with IPRoute(netns=namespace, flags=0) as inside:
        names = {link["index"]: link.get("ifname") for link in inside.get_links()}
        for link in inside.get_links():
            found[link.get("ifname") or ""] = {
                "kind": link.get(("linkinfo", "kind")),
                "vlan_id": link.get(("linkinfo", "data", "vlan_id")),
                "lower": names.get(link.get("link") or 0),
                "mac": link.get("address"),
                "alias": link.get("ifalias"),
                "up": bool(link["flags"] & 1),
                "index": link["index"],
                "addresses": {
                    f"{addr.get('address')}/{addr.get('prefixlen')}"
                    for addr in inside.get_addr(index=link["index"])
                    if addr.get("scope") == 0
                },
            }
    return found


def sysctl(namespace: str, key: str) -> str:
    path = "/proc/sys/" + key.replace(".", "/")
    return subprocess.run(
        ["ip", "netns", "exec", namespace, "cat", path], capture_output=True, text=True, check=True
    ).stdout.strip()


@pytest.fixture
def namespace() -> Iterator[str]:
    name = f"danm-kt-{uuid.uuid4().hex[:6]}"
    netns.create(name)
    try:
        yield name
    finally:
        if name in netns.listnetns():
            netns.remove(name)


def test_without_vlan_a_dummy_named_as_the_interface(namespace: str) -> None:
    path = f"{NETNS_DIR}/{namespace}"
    endpoint = str(uuid.uuid4())
    info = create_dpdk_dummy(path, "net1", endpoint, VF_MAC, PCI, 0)
    assert (info.name, info.mac, info.mtu) == ("net1", VF_MAC.lower(), 1500)
    assert links(namespace)["net1"] == {
        "kind": "dummy", "vlan_id": None, "lower": None, "mac": VF_MAC.lower(), "alias": PCI,
        "up": False, "index": info.index, "addresses": set(),
    }
    assert set(links(namespace)) == {"lo", "net1"}  # nothing named after the DanmEp

    # The caller's configure() then treats it like any pod interface.
    configured = configure(path, PodLink("net1", "net1", ip4="10.20.0.5/24"), "net1")
    assert configured.index == info.index
    after = links(namespace)["net1"]
    assert (after["up"], after["addresses"], after["mac"]) == (True, {"10.20.0.5/24"}, VF_MAC.lower())

    # No usable MAC (none found, all zeros, not a MAC): the kernel's random one.
    for number, mac in enumerate(("", "00:00:00:00:00:00", "fa:16:3e:aa:bb"), start=2):
        random = create_dpdk_dummy(path, f"net{number}", endpoint, mac, PCI, 0)
        assert random.mac not in ("", "00:00:00:00:00:00")
        assert links(namespace)[f"net{number}"]["alias"] == PCI


def test_with_vlan_a_vlan_link_on_a_dummy_named_from_the_danmep(namespace: str) -> None:
    path = f"{NETNS_DIR}/{namespace}"
    endpoint = "0b6e3f4a-1c2d-4e5f-8a9b-0c1d2e3f4a5b"
    dummy = "0b6e3f4a-1c2d-"  # the first 14 characters
    info = create_dpdk_dummy(path, "net1", endpoint, VF_MAC, PCI, 300)
    found = links(namespace)
    assert set(found) == {"lo", dummy, "net1"}
    assert found[dummy] == {
        "kind": "dummy", "vlan_id": None, "lower": None, "mac": VF_MAC.lower(), "alias": None,
        "up": True, "index": found[dummy]["index"], "addresses": set(),
    }
    assert found["net1"] == {
        "kind": "vlan", "vlan_id": 300, "lower": dummy, "mac": VF_MAC.lower(), "alias": PCI,
        "up": False, "index": info.index, "addresses": set(),
    }
    assert (info.name, info.mac) == ("net1", VF_MAC.lower())
    assert sysctl(namespace, f"net.ipv6.conf.{dummy}.disable_ipv6") == "1"

    # An IPv6 interface: the dummy gets §3.6 step 3's IPv6 sysctls instead.
    endpoint6 = "9f8e7d6c-5b4a-4392-8a1b-0c1d2e3f4a5b"
    create_dpdk_dummy(path, "net2", endpoint6, VF_MAC, PCI, 4094, ipv6_enabled=True)
    dummy6 = endpoint6[:14]
    assert [sysctl(namespace, f"net.ipv6.conf.{dummy6}.{key}") for key in (
        "disable_ipv6", "autoconf", "accept_ra", "ndisc_notify"
    )] == ["0", "0", "0", "1"]
    assert links(namespace)["net2"]["vlan_id"] == 4094

    configure(path, PodLink("net1", "net1", ip4="10.30.0.5/24", ip6="fd00:30::5/64"), "net1")
    after = links(namespace)["net1"]
    assert (after["up"], after["addresses"]) == (True, {"10.30.0.5/24", "fd00:30::5/64"})


def test_failures_leave_nothing_of_ours(namespace: str) -> None:
    path = f"{NETNS_DIR}/{namespace}"
    with IPRoute(netns=namespace, flags=0) as inside:
        inside.link("add", ifname="net1", kind="dummy")
    before = links(namespace)
    endpoint = "1a2b3c4d-5e6f-4a8b-9c0d-1e2f3a4b5c6d"

    # The VLAN link's name is taken: its dummy was created first and is removed again.
    with pytest.raises(LinkError, match=f"cannot create vlan with MAC {VF_MAC.lower()} named net1 in network namespace {path}"):
        create_dpdk_dummy(path, "net1", endpoint, VF_MAC, PCI, 300)
    assert links(namespace) == before

    # The dummy's own name is taken (vlan 0): the existing link stays as it was.
    with pytest.raises(LinkError, match="cannot create dummy .*named net1"):
        create_dpdk_dummy(path, "net1", endpoint, VF_MAC, PCI, 0)
    assert links(namespace) == before

    # A multicast MAC is refused by the kernel.
    with pytest.raises(LinkError, match="cannot create dummy with MAC 01:00:5e:00:00:01 named net2"):
        create_dpdk_dummy(path, "net2", endpoint, "01:00:5e:00:00:01", PCI, 0)
    assert links(namespace) == before

    # Refused before anything is created.
    with pytest.raises(LinkError, match="vlan 4095 is not a VLAN ID"):
        create_dpdk_dummy(path, "net2", endpoint, VF_MAC, PCI, 4095)
    with pytest.raises(LinkError, match="interface name 'net2-far-too-long'"):
        create_dpdk_dummy(path, "net2-far-too-long", endpoint, VF_MAC, PCI, 0)
    with pytest.raises(LinkError, match="dummy interface name \\(from DanmEp ''\\)"):
        create_dpdk_dummy(path, "net2", "", VF_MAC, PCI, 300)
    assert links(namespace) == before
