"""danm.netlink.create_ipvlan in a real kernel with ipvlan, 8021q and dummy links (user-mode Linux).

Runs only inside the guest of `scripts/kernel-test`. The host parents are named as danm names
them (reference §3.2): a dummy `vx_<network>` stands in for netwatcher's VxLAN device, and a VLAN
`<network>.300` on a dummy `ktphys...` for its VLAN device. Everything read back comes from the
kernel, through pyroute2 sockets opened in the respective namespace. Kept to a few tests: every
guest process start and import is slow.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from pyroute2 import IPRoute, netns

from danm.netlink import (
    IPVLAN_MODE_L2,
    LinkError,
    ParentMissing,
    PodLink,
    create_ipvlan,
    delete_link,
    parent_device,
)

NETNS_DIR = "/var/run/netns"


def unique(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex[:6]}"


def temp_name() -> str:
    """Like danm's: the first 15 characters of a UUID."""
    return str(uuid.uuid4())[:15]


def host_links(ipr: IPRoute) -> set[str]:
    return {link.get("ifname") or "" for link in ipr.get_links()}


def netns_links(name: str) -> dict[str, dict[str, object]]:
    """name -> {kind, mode, mtu, link, addresses} of every link in the namespace."""
    found: dict[str, dict[str, object]] = {}
    with IPRoute(netns=name, flags=0) as inside:
        for link in inside.get_links():
            addresses = {
                f"{addr.get('address')}/{addr.get('prefixlen')}"
                for addr in inside.get_addr(index=link["index"])
                if addr.get("scope") == 0
            }
            found[link.get("ifname") or ""] = {
                "kind": link.get(("linkinfo", "kind")),
                "mode": link.get(("linkinfo", "data", "ipvlan_mode")),
                "mtu": link.get("mtu"),
                "up": link["state"] == "up",
                "addresses": addresses,
            }
    return found


@pytest.fixture(scope="module")
def host() -> Iterator[IPRoute]:
    """Netlink socket in the guest's initial namespace; checks for leftovers at module end."""
    with IPRoute() as ipr:
        before = host_links(ipr), set(netns.listnetns())
        yield ipr
        assert (host_links(ipr), set(netns.listnetns())) == before, "links or namespaces left behind"


@pytest.fixture
def namespace() -> Iterator[str]:
    name = unique("danm-kt-")
    netns.create(name)
    try:
        yield name
    finally:
        if name in netns.listnetns():
            netns.remove(name)


@pytest.fixture
def parents(host: IPRoute) -> Iterator[tuple[str, str]]:
    """(vxlan-style parent with MTU 8950, VLAN parent with MTU 1400), both up."""
    network = unique("kt")
    physical = unique("ktphys")
    vxlan_parent = parent_device("ignored", network, 0, 600)
    vlan_parent = parent_device("ignored", network, 300, 0)
    assert (vxlan_parent, vlan_parent) == (f"vx_{network}", f"{network}.300")
    try:
        host.link("add", ifname=vxlan_parent, kind="dummy", mtu=8950)
        host.link("add", ifname=physical, kind="dummy")
        physical_index = host.link_lookup(ifname=physical)[0]
        host.link("add", ifname=vlan_parent, kind="vlan", link=physical_index, vlan_id=300, mtu=1400)
        for name in (vxlan_parent, physical, vlan_parent):
            host.link("set", index=host.link_lookup(ifname=name)[0], state="up")
        yield vxlan_parent, vlan_parent
    finally:
        # Deleting a lower link also deletes what is stacked on it, in whichever namespace.
        for name in (vxlan_parent, vlan_parent, physical):
            for index in host.link_lookup(ifname=name):
                host.link("del", index=index)


def test_create_ipvlan_l2_with_parent_mtu(host: IPRoute, parents: tuple[str, str], namespace: str) -> None:
    path = f"{NETNS_DIR}/{namespace}"
    for number, (parent, mtu) in enumerate(zip(parents, (8950, 1400)), start=1):
        temp = temp_name()
        link = PodLink(
            f"net{number}", temp, ip4=f"10.1.{number}.5/24", ip6=f"fd00:{number}::5/64",
            routes={"10.50.0.0/16": f"10.1.{number}.1"}, table=100 + number, proutes={},
        )
        info = create_ipvlan(path, parent, link)
        assert (info.name, info.mtu) == (f"net{number}", mtu)
        assert info.warnings == [], info.warnings
        assert temp not in host_links(host)
        inside = netns_links(namespace)[f"net{number}"]
        assert inside == {
            "kind": "ipvlan", "mode": IPVLAN_MODE_L2, "mtu": mtu, "up": True,
            "addresses": {f"10.1.{number}.5/24", f"fd00:{number}::5/64"},
        }
    assert set(netns_links(namespace)) == {"lo", "net1", "net2"}
    assert delete_link(path, "net1") is True
    assert delete_link(path, "net1") is False
    assert set(netns_links(namespace)) == {"lo", "net2"}


def test_missing_parent_leaves_nothing(host: IPRoute, namespace: str) -> None:
    before = host_links(host)
    temp = temp_name()
    with pytest.raises(ParentMissing, match="vx_ktnone"):
        create_ipvlan(f"{NETNS_DIR}/{namespace}", "vx_ktnone", PodLink("net1", temp, ip4="10.1.1.5/24"))
    assert host_links(host) == before
    assert set(netns_links(namespace)) == {"lo"}


def test_failure_after_the_move_leaves_nothing(
    host: IPRoute, parents: tuple[str, str], namespace: str
) -> None:
    path = f"{NETNS_DIR}/{namespace}"
    before = host_links(host)
    unreachable = PodLink("net1", temp_name(), ip4="10.1.1.5/24", routes={"10.60.0.0/16": "192.0.2.1"})
    with pytest.raises(LinkError, match=f"192.0.2.1.*net1.*{namespace}"):
        create_ipvlan(path, parents[0], unreachable)
    assert host_links(host) == before
    assert set(netns_links(namespace)) == {"lo"}

    # The final name is taken in the pod: the rename fails, and only our link is removed.
    with IPRoute(netns=namespace, flags=0) as inside:
        inside.link("add", ifname="net1", kind="dummy")
    taken = PodLink("net1", temp_name(), ip4="10.1.1.5/24")
    with pytest.raises(LinkError, match="rename"):
        create_ipvlan(path, parents[1], taken)
    assert host_links(host) == before
    assert netns_links(namespace)["net1"]["kind"] == "dummy"
    assert set(netns_links(namespace)) == {"lo", "net1"}
