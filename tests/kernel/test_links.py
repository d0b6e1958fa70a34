"""Pod links in a real kernel: ipvlan (L2) and 802.1q VLAN, moved into a pod network namespace.

Runs only inside user-mode Linux (`scripts/kernel-test tests/kernel`): the host kernel has no
ipvlan, 8021q or dummy link types. A dummy link stands in for the host NIC. Everything read back
comes from the kernel, through a netlink socket opened inside the namespace. Fixtures remove the
namespace and the links even when a test fails, and a module-wide check verifies that nothing
was left behind.
"""

import uuid
from collections.abc import Iterator

import pytest
from pyroute2 import IPRoute, netns
from pyroute2.netlink.rtnl.ifinfmsg import ifinfmsg

IPVLAN_MODE_L2 = 0  # the kernel's IPVLAN_MODE_L2; pyroute2 0.9.7 takes the integer
VLAN_ID = 2049


def unique(prefix: str) -> str:
    """A name unique to this run; link names stay within IFNAMSIZ (15 characters)."""
    return f"{prefix}{uuid.uuid4().hex[:8]}"


def host_state(ipr: IPRoute) -> tuple[set[str], set[str]]:
    links = {link.get("ifname") or "" for link in ipr.get_links()}
    return links, set(netns.listnetns())


def single_link(ipr: IPRoute, ifname: str) -> ifinfmsg:
    links = ipr.link("get", ifname=ifname)
    assert len(links) == 1, links
    return links[0]


@pytest.fixture(scope="module")
def host() -> Iterator[IPRoute]:
    """Netlink socket in the guest's initial namespace; checks for leftovers at module end."""
    with IPRoute() as ipr:
        before = host_state(ipr)
        yield ipr
        assert host_state(ipr) == before, "links or namespaces left behind"


@pytest.fixture
def namespace() -> Iterator[str]:
    """A fresh named network namespace (under /run/netns), removed afterwards."""
    name = unique("danm-kt-")
    netns.create(name)
    try:
        yield name
    finally:
        # The namespace, and every virtual link still in it, goes when its last user does.
        if name in netns.listnetns():
            netns.remove(name)


@pytest.fixture
def parent(host: IPRoute) -> Iterator[int]:
    """A dummy link, up, standing in for the host NIC; returns its index."""
    name = unique("ktd")
    host.link("add", ifname=name, kind="dummy")
    try:
        index = single_link(host, name)["index"]
        host.link("set", index=index, state="up")
        yield index
    finally:
        # Deleting the lower link also deletes the ipvlan/VLAN links stacked on it, in
        # whichever namespace they are.
        for index in host.link_lookup(ifname=name):
            host.link("del", index=index)


def test_ipvlan_l2_and_vlan_move_into_namespace(
    host: IPRoute, parent: int, namespace: str
) -> None:
    ipvlan_name, vlan_name = unique("ktipvl"), unique("ktvlan")
    host.link("add", ifname=ipvlan_name, kind="ipvlan", link=parent, ipvlan_mode=IPVLAN_MODE_L2)
    host.link("add", ifname=vlan_name, kind="vlan", link=parent, vlan_id=VLAN_ID)
    for name in (ipvlan_name, vlan_name):
        host.link("set", index=single_link(host, name)["index"], net_ns_fd=namespace)

    assert host.link_lookup(ifname=ipvlan_name) == []
    assert host.link_lookup(ifname=vlan_name) == []

    with IPRoute(netns=namespace, flags=0) as inside:
        names = {link.get("ifname") for link in inside.get_links()}
        assert names == {"lo", ipvlan_name, vlan_name}

        ipvlan = single_link(inside, ipvlan_name)
        assert ipvlan.get(("linkinfo", "kind")) == "ipvlan"
        assert ipvlan.get(("linkinfo", "data", "ipvlan_mode")) == IPVLAN_MODE_L2

        vlan = single_link(inside, vlan_name)
        assert vlan.get(("linkinfo", "kind")) == "vlan"
        assert vlan.get(("linkinfo", "data", "vlan_id")) == VLAN_ID

        # Both still sit on the dummy, which stayed in the other namespace.
        for link in (ipvlan, vlan):
            assert link.get("link") == parent
            assert link.get("link_netnsid") is not None

