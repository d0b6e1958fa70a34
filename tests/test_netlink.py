"""danm.netlink against the host kernel: real network namespaces and veth pairs.

Each test gets a pod namespace holding one end of a veth pair (the link `configure` works on)
and an observer namespace holding the other end, up, so that the pod end has a carrier and the
frames it sends can be captured. Both ends leave the host namespace before the test starts;
expectations are read back with iproute2 (`ip -j`), independently of the code under test.
Everything is removed afterwards, and a module-wide check verifies that nothing of ours appeared
in the host namespace (new host entries are tolerated only if they are not ours: other tests may
run on the same host at the same time).

ipvlan needs a kernel module the host lacks: see tests/kernel/test_netlink_ipvlan.py.
"""

from __future__ import annotations

import json
import os
import socket
import struct
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from danm import netlink
from danm.netlink import (
    LinkError,
    NetnsMissing,
    PodLink,
    configure,
    delete_link,
    enable_ipv6,
    inspect,
    rule_priority,
)

NETNS_DIR = Path("/run/netns")
# Everything this module creates carries one of these; the host check looks for them.
NAME_PREFIX = "dnl"
V4 = "10.231"
V6 = "fd00:231"
TABLE = 231
ETH_P_ALL = 0x0003
RTMGRP_IPV6_IFADDR = 0x100
RTM_NEWADDR, RTM_DELADDR = 20, 21


def unique(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex[:8]}"


def ip(*args: str) -> str:
    done = subprocess.run(["ip", *args], capture_output=True, text=True, check=False)
    assert done.returncode == 0, f"ip {' '.join(args)}: {done.stderr}"
    return done.stdout


def ip_json(*args: str) -> list[dict[str, object]]:
    result: list[dict[str, object]] = json.loads(ip("-j", *args) or "[]")
    return result


def sysctl(ns: str, key: str) -> str:
    return subprocess.run(
        ["ip", "netns", "exec", ns, "cat", f"/proc/sys/{key.replace('.', '/')}"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()


def thread_netns() -> int:
    return os.stat("/proc/thread-self/ns/net").st_ino


def host_dump() -> set[str]:
    entries: set[str] = set()
    for args in (
        ("link",), ("addr",), ("-4", "route", "show", "table", "all"),
        ("-6", "route", "show", "table", "all"), ("-4", "rule"), ("-6", "rule"),
    ):
        for entry in ip_json(*args):
            entries.add(json.dumps(entry, sort_keys=True))
    return entries


def ours(entry: str) -> bool:
    return any(marker in entry for marker in (f'"{NAME_PREFIX}', f'"{V4}.', f'"{V6}:', f'"table": "{TABLE}"'))


@pytest.fixture(scope="module", autouse=True)
def host_untouched() -> Iterator[None]:
    before = host_dump()
    assert not [entry for entry in before if ours(entry)], "leftovers of an earlier run"
    before_netns = set(os.listdir(NETNS_DIR)) if NETNS_DIR.exists() else set()
    yield
    leaked = [entry for entry in host_dump() - before if ours(entry)]
    assert not leaked, f"entries of ours in the host namespace: {leaked}"
    after_netns = set(os.listdir(NETNS_DIR)) if NETNS_DIR.exists() else set()
    assert not {name for name in after_netns - before_netns if name.startswith(NAME_PREFIX)}


@dataclass
class Pod:
    ns: str  # pod namespace name
    path: str  # its path, what danm gets
    link: str  # the veth end in the pod namespace
    observer_ns: str
    peer: str  # the veth end in the observer namespace, up


def make_pod() -> Pod:
    ns, observer = unique(NAME_PREFIX), unique(NAME_PREFIX)
    link, peer = unique(NAME_PREFIX), unique(NAME_PREFIX)
    ip("netns", "add", ns)
    ip("netns", "add", observer)
    ip("link", "add", link, "type", "veth", "peer", "name", peer)
    ip("link", "set", link, "netns", ns)
    ip("link", "set", peer, "netns", observer)
    # No IPv6 of its own on the observer side: its traffic would only blur the capture.
    subprocess.run(
        ["ip", "netns", "exec", observer, "sysctl", "-qw", f"net.ipv6.conf.{peer}.disable_ipv6=1"],
        check=True,
    )
    ip("-n", observer, "link", "set", peer, "up")
    return Pod(ns, str(NETNS_DIR / ns), link, observer, peer)


def remove_pod(pod: Pod) -> None:
    for ns in (pod.ns, pod.observer_ns):
        subprocess.run(["ip", "netns", "del", ns], capture_output=True, check=False)


@pytest.fixture
def pod() -> Iterator[Pod]:
    created = make_pod()
    try:
        yield created
    finally:
        remove_pod(created)


def link_json(ns: str, name: str) -> dict[str, object]:
    found = ip_json("-n", ns, "-d", "addr", "show", "dev", name)
    assert len(found) == 1, found
    return found[0]


def addr_infos(ns: str, name: str) -> list[dict[str, object]]:
    infos = link_json(ns, name)["addr_info"]
    assert isinstance(infos, list)
    return infos


# ------------------------------------------------------------------------------------------
# Addresses, rename, up, sysctls


def test_configure_addresses_rename_up_and_sysctls(pod: Pod) -> None:
    link = PodLink("net1", pod.link, ip4=f"{V4}.1.5/24", ip6=f"{V6}:1::5/64", ipv6_enabled=True)
    info = configure(pod.path, link, pod.link)

    names = {entry["ifname"] for entry in ip_json("-n", pod.ns, "link")}
    assert names == {"lo", "net1"}
    shown = link_json(pod.ns, "net1")
    flags = shown["flags"]
    assert isinstance(flags, list) and "UP" in flags
    assert info.name == "net1" and info.index == shown["ifindex"]
    assert info.mac == shown["address"] and info.mtu == shown["mtu"] == 1500
    assert info.warnings == []

    by_local = {entry["local"]: entry for entry in addr_infos(pod.ns, "net1")}
    v4 = by_local[f"{V4}.1.5"]
    assert v4["prefixlen"] == 24 and v4["broadcast"] == f"{V4}.1.255"
    v6 = by_local[f"{V6}:1::5"]
    assert v6["prefixlen"] == 64 and v6["scope"] == "global"
    assert v6.get("nodad") is True  # IFA_F_NODAD: usable at once,
    assert not v6.get("tentative") and not v6.get("dadfailed")  # never tentative

    for key, value in (("disable_ipv6", "0"), ("autoconf", "0"), ("accept_ra", "0"), ("ndisc_notify", "1")):
        assert sysctl(pod.ns, f"net.ipv6.conf.net1.{key}") == value, key


def test_ipv6_off_before_the_link_goes_up(pod: Pod) -> None:
    """Without IPv6 the interface gets disable_ipv6=1 while still down: had it been written
    after `up`, the kernel would have created a link-local address first (and announced its
    removal: a tentative address is only announced once DAD starts, its deletion at once)."""
    ns = netlink._Netns(pod.path)
    try:
        with ns.inside():
            monitor = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, socket.NETLINK_ROUTE)
    finally:
        ns.close()
    with monitor:
        monitor.bind((0, RTMGRP_IPV6_IFADDR))
        configure(pod.path, PodLink("net1", pod.link, ip4=f"{V4}.2.5/24"), pod.link)
        time.sleep(0.3)  # the kernel would add the link-local address right at `up`
        monitor.setblocking(False)
        address_events = 0
        while True:
            try:
                data = monitor.recv(65536)
            except BlockingIOError:
                break
            offset = 0
            while offset + 16 <= len(data):
                length, kind = struct.unpack_from("=IH", data, offset)
                if kind in (RTM_NEWADDR, RTM_DELADDR):
                    address_events += 1
                offset += max((length + 3) & ~3, 16)
    assert address_events == 0
    assert sysctl(pod.ns, "net.ipv6.conf.net1.disable_ipv6") == "1"
    assert [entry["family"] for entry in addr_infos(pod.ns, "net1")] == ["inet"]


def test_ipv6_enabled_without_an_address(pod: Pod) -> None:
    """ip6 "none" still asks for IPv6 on the interface (ipv6_enabled), without an address."""
    configure(pod.path, PodLink("net1", pod.link, ip4=f"{V4}.3.5/24", ipv6_enabled=True), pod.link)
    assert sysctl(pod.ns, "net.ipv6.conf.net1.disable_ipv6") == "0"
    assert sysctl(pod.ns, "net.ipv6.conf.net1.ndisc_notify") == "1"


def test_same_name_keeps_the_link_and_reconfiguring_is_idempotent(pod: Pod) -> None:
    link = PodLink(pod.link, pod.link, ip4=f"{V4}.4.5/24", ip6=f"{V6}:4::5/64")
    first = configure(pod.path, link, pod.link)
    second = configure(pod.path, link, pod.link)  # existing identical addresses are fine
    assert first.index == second.index and first.name == second.name == pod.link
    locals_ = sorted(str(entry["local"]) for entry in addr_infos(pod.ns, pod.link) if entry["scope"] == "global")
    assert locals_ == [f"{V4}.4.5", f"{V6}:4::5"]


# ------------------------------------------------------------------------------------------
# Routes and policy routing


def test_main_table_routes_replace_an_existing_route(pod: Pod) -> None:
    first = PodLink(
        "net1", pod.link, ip4=f"{V4}.5.5/24", ip6=f"{V6}:5::5/64",
        routes={f"{V4}.50.0/24": f"{V4}.5.1", "bad": f"{V4}.5.1"}, routes6={f"{V6}:50::/48": f"{V6}:5::1"},
    )
    info = configure(pod.path, first, pod.link)
    assert len(info.warnings) == 1 and "bad" in info.warnings[0]  # unparsable entries are skipped
    routes = ip_json("-n", pod.ns, "route", "show", f"{V4}.50.0/24")
    assert [(r["dst"], r["gateway"], r["dev"]) for r in routes] == [(f"{V4}.50.0/24", f"{V4}.5.1", "net1")]
    routes6 = ip_json("-n", pod.ns, "-6", "route", "show", f"{V6}:50::/48")
    assert [(r["dst"], r["gateway"]) for r in routes6] == [(f"{V6}:50::/48", f"{V6}:5::1")]

    second = PodLink(
        "net1", "net1", ip4=f"{V4}.5.5/24", ip6=f"{V6}:5::5/64",
        routes={f"{V4}.50.0/24": f"{V4}.5.2"}, routes6={f"{V6}:50::/48": f"{V6}:5::2"},
    )
    configure(pod.path, second, "net1")
    routes = ip_json("-n", pod.ns, "route", "show", f"{V4}.50.0/24")
    assert [(r["dst"], r["gateway"]) for r in routes] == [(f"{V4}.50.0/24", f"{V4}.5.2")]
    routes6 = ip_json("-n", pod.ns, "-6", "route", "show", f"{V6}:50::/48")
    assert [(r["dst"], r["gateway"]) for r in routes6] == [(f"{V6}:50::/48", f"{V6}:5::2")]


def test_routes_need_the_address_of_their_family(pod: Pod) -> None:
    link = PodLink("net1", pod.link, ip4=f"{V4}.6.5/24", routes6={f"{V6}:60::/48": f"{V6}:6::1"})
    configure(pod.path, link, pod.link)
    assert ip_json("-n", pod.ns, "-6", "route", "show", f"{V6}:60::/48") == []


def test_policy_rules_are_per_address_at_a_deterministic_priority(pod: Pod) -> None:
    link = PodLink(
        "net1", pod.link, ip4=f"{V4}.7.5/24", ip6=f"{V6}:7::5/64", table=TABLE,
        proutes={f"{V4}.70.0/24": f"{V4}.7.1"}, proutes6={f"{V6}:70::/48": f"{V6}:7::1"},
    )
    configure(pod.path, link, pod.link)
    priority = rule_priority(TABLE)
    assert priority == netlink.RULE_PRIORITY_BASE + TABLE < 32766

    rules4 = [r for r in ip_json("-n", pod.ns, "-4", "rule") if r["table"] == str(TABLE)]
    assert [(r["priority"], r["src"], r.get("srclen", 32)) for r in rules4] == [(priority, f"{V4}.7.5", 32)]
    rules6 = [r for r in ip_json("-n", pod.ns, "-6", "rule") if r["table"] == str(TABLE)]
    assert [(r["priority"], r["src"], r.get("srclen", 128)) for r in rules6] == [(priority, f"{V6}:7::5", 128)]

    table4 = ip_json("-n", pod.ns, "-4", "route", "show", "table", str(TABLE))
    assert [(r["dst"], r["gateway"], r["dev"]) for r in table4] == [(f"{V4}.70.0/24", f"{V4}.7.1", "net1")]
    table6 = ip_json("-n", pod.ns, "-6", "route", "show", "table", str(TABLE))
    assert [(r["dst"], r["gateway"], r["dev"]) for r in table6] == [(f"{V6}:70::/48", f"{V6}:7::1", "net1")]

    # Again, as after a retried ADD: the rule is not duplicated.
    configure(pod.path, PodLink(
        "net1", "net1", ip4=f"{V4}.7.5/24", ip6=f"{V6}:7::5/64", table=TABLE, proutes={}, proutes6={},
    ), "net1")
    assert len([r for r in ip_json("-n", pod.ns, "-4", "rule") if r["table"] == str(TABLE)]) == 1


def test_empty_proutes_still_add_the_rule_and_absent_ones_do_not(pod: Pod) -> None:
    link = PodLink("net1", pod.link, ip4=f"{V4}.8.5/24", ip6=f"{V6}:8::5/64", table=TABLE, proutes={})
    configure(pod.path, link, pod.link)
    assert [r["src"] for r in ip_json("-n", pod.ns, "-4", "rule") if r["table"] == str(TABLE)] == [f"{V4}.8.5"]
    assert [r for r in ip_json("-n", pod.ns, "-6", "rule") if r["table"] == str(TABLE)] == []


def test_proutes_without_a_table_name_rt_tables() -> None:
    with pytest.raises(LinkError, match="rt_tables"):
        PodLink("net1", "tmp", ip4=f"{V4}.9.5/24", proutes={f"{V4}.90.0/24": f"{V4}.9.1"})
    with pytest.raises(LinkError, match="rt_tables"):
        PodLink("net1", "tmp", ip6=f"{V6}:9::5/64", proutes6={})
    for reserved in (253, 254, 255):
        with pytest.raises(LinkError, match="rt_tables"):
            PodLink("net1", "tmp", ip4=f"{V4}.9.5/24", table=reserved, proutes={})
        PodLink("net1", "tmp", ip4=f"{V4}.9.5/24", table=reserved)  # no policy routing asked: fine
    with pytest.raises(LinkError, match="rt_tables"):
        rule_priority(0)
    with pytest.raises(LinkError, match="rt_tables"):
        rule_priority(32766)
    assert len({rule_priority(table) for table in range(1, 256)}) == 255


# ------------------------------------------------------------------------------------------
# Refusals before anything is created


@pytest.mark.parametrize(
    "name, temp_name, field",
    [
        ("a" * 16, "tmp", "interface name"),
        ("net1", "0b6e3f4a-1c2d-4e", "temporary interface name"),
        ("", "tmp", "interface name"),
        ("net/1", "tmp", "interface name"),
        ("net 1", "tmp", "interface name"),
    ],
)
def test_bad_names_are_refused_before_anything_is_created(name: str, temp_name: str, field: str) -> None:
    with pytest.raises(LinkError, match=field):
        PodLink(name, temp_name)


def test_a_15_character_name_is_accepted(pod: Pod) -> None:
    name = "a" * 15
    configure(pod.path, PodLink(name, pod.link), pod.link)
    assert {entry["ifname"] for entry in ip_json("-n", pod.ns, "link")} == {"lo", name}


@pytest.mark.parametrize("ip4, ip6", [("10.231.0.5", ""), ("fd00::5/64", ""), ("", "10.231.0.5/24"), ("x/24", "")])
def test_bad_addresses_name_the_field(ip4: str, ip6: str) -> None:
    with pytest.raises(LinkError, match="ip4" if ip4 else "ip6"):
        PodLink("net1", "tmp", ip4=ip4, ip6=ip6)


# ------------------------------------------------------------------------------------------
# Deleting, inspecting, enabling IPv6


def test_delete_link(pod: Pod) -> None:
    configure(pod.path, PodLink("net1", pod.link, ip4=f"{V4}.10.5/24"), pod.link)
    assert delete_link(pod.path, "net1") is True
    assert {entry["ifname"] for entry in ip_json("-n", pod.ns, "link")} == {"lo"}
    assert delete_link(pod.path, "net1") is False  # the link is gone
    missing = str(NETNS_DIR / unique(NAME_PREFIX))
    assert delete_link(missing, "net1") is False  # the namespace is gone
    assert not os.path.exists(missing)


def test_inspect(pod: Pod) -> None:
    link = PodLink(
        "net1", pod.link, ip4=f"{V4}.11.5/24", ip6=f"{V6}:11::5/64",
        routes={"0.0.0.0/0": f"{V4}.11.1"}, table=TABLE, proutes={f"{V4}.110.0/24": f"{V4}.11.1"},
    )
    info = configure(pod.path, link, pod.link)
    observed = inspect(pod.path, "net1")
    assert observed is not None
    assert (observed.name, observed.index, observed.mac, observed.up) == ("net1", info.index, info.mac, True)
    assert observed.addresses == {f"{V4}.11.5/24", f"{V6}:11::5/64"}
    assert {
        (254, "0.0.0.0/0", f"{V4}.11.1"),
        (254, f"{V4}.11.0/24", ""),
        (254, f"{V6}:11::/64", ""),
        (TABLE, f"{V4}.110.0/24", f"{V4}.11.1"),
    } <= observed.routes
    assert all(table != 255 for table, _, _ in observed.routes)
    assert (rule_priority(TABLE), f"{V4}.11.5/32", TABLE) in observed.rules
    assert (32766, "0.0.0.0/0", 254) in observed.rules and (32766, "::/0", 254) in observed.rules
    assert inspect(pod.path, "net2") is None


def test_enable_ipv6(pod: Pod) -> None:
    for scope in ("all", "default"):
        subprocess.run(
            ["ip", "netns", "exec", pod.ns, "sysctl", "-qw", f"net.ipv6.conf.{scope}.disable_ipv6=1"],
            check=True,
        )
    assert enable_ipv6(pod.path) is True
    assert sysctl(pod.ns, "net.ipv6.conf.all.disable_ipv6") == "0"
    assert sysctl(pod.ns, "net.ipv6.conf.default.disable_ipv6") == "0"
    assert netlink.kernel_has_ipv6() is True


# ------------------------------------------------------------------------------------------
# Namespaces: missing ones, the thread's own, several threads


def test_missing_or_bogus_netns(tmp_path: Path) -> None:
    missing = str(NETNS_DIR / unique(NAME_PREFIX))
    with pytest.raises(NetnsMissing, match=missing):
        configure(missing, PodLink("net1", "tmp"), "tmp")
    with pytest.raises(NetnsMissing):
        inspect(missing, "net1")
    with pytest.raises(NetnsMissing):
        enable_ipv6(missing)
    with pytest.raises(NetnsMissing):
        netlink.create_ipvlan(missing, "lo", PodLink("net1", "tmp"))
    assert not os.path.exists(missing)

    not_a_netns = tmp_path / "netns"
    not_a_netns.write_text("")
    with pytest.raises(NetnsMissing, match="not a network namespace"):
        configure(str(not_a_netns), PodLink("net1", "tmp"), "tmp")
    assert delete_link(str(not_a_netns), "net1") is False


def test_the_thread_returns_to_its_netns_after_failures(pod: Pod) -> None:
    before = thread_netns()
    with pytest.raises(LinkError, match="no such link"):
        configure(pod.path, PodLink("net1", "missing0"), "missing0")
    assert thread_netns() == before

    ns = netlink._Netns(pod.path)
    try:
        with pytest.raises(ZeroDivisionError):
            with ns.inside():
                assert thread_netns() == os.stat(pod.path).st_ino
                raise ZeroDivisionError
    finally:
        ns.close()
    assert thread_netns() == before


def test_parallel_configure_in_threads_lands_in_each_own_netns() -> None:
    pods = [make_pod() for _ in range(4)]
    errors: list[BaseException] = []
    thread_ok: list[bool] = []

    def work(number: int, target: Pod) -> None:
        try:
            own = thread_netns()
            for round_ in range(3):  # several switches per thread, interleaved with the others
                configure(target.path, PodLink(
                    "net1", target.link if round_ == 0 else "net1", ip4=f"{V4}.20.{number}/24",
                    ip6=f"{V6}:20::{number}/64", table=TABLE, proutes={},
                ), target.link if round_ == 0 else "net1")
            thread_ok.append(thread_netns() == own)
        except BaseException as err:  # reported by the main thread
            errors.append(err)

    try:
        before = thread_netns()
        threads = [threading.Thread(target=work, args=(n + 1, target)) for n, target in enumerate(pods)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        assert not errors, errors
        assert thread_ok == [True] * len(pods)
        assert thread_netns() == before
        for number, target in enumerate(pods, start=1):
            locals_ = {entry["local"] for entry in addr_infos(target.ns, "net1") if entry["scope"] == "global"}
            assert locals_ == {f"{V4}.20.{number}", f"{V6}:20::{number}"}
            rules = [r["src"] for r in ip_json("-n", target.ns, "-4", "rule") if r["table"] == str(TABLE)]
            assert rules == [f"{V4}.20.{number}"]
    finally:
        for target in pods:
            remove_pod(target)


# ------------------------------------------------------------------------------------------
# Announcements, captured on the other end of the veth


def capture(pod: Pod) -> socket.socket:
    ns = netlink._Netns(str(NETNS_DIR / pod.observer_ns))
    try:
        with ns.inside():
            sniffer = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    finally:
        ns.close()
    sniffer.bind((pod.peer, ETH_P_ALL))
    return sniffer


def frames(sniffer: socket.socket, wanted: int, seconds: float = 3.0) -> list[bytes]:
    received: list[bytes] = []
    deadline = time.monotonic() + seconds
    while len(received) < wanted and time.monotonic() < deadline:
        sniffer.settimeout(max(deadline - time.monotonic(), 0.01))
        try:
            received.append(sniffer.recv(65536))
        except TimeoutError:
            break
    return received


def test_gratuitous_arp_and_unsolicited_na_are_sent(pod: Pod) -> None:
    address4, address6 = f"{V4}.30.5", f"{V6}:30::5"
    with capture(pod) as sniffer:
        info = configure(
            pod.path, PodLink("net1", pod.link, ip4=f"{address4}/24", ip6=f"{address6}/64"), pod.link
        )
        assert info.warnings == []
        mac = bytes.fromhex(info.mac.replace(":", ""))
        arps: list[bytes] = []
        advertisements: list[bytes] = []
        deadline = time.monotonic() + 3
        while (not arps or not advertisements) and time.monotonic() < deadline:
            for frame in frames(sniffer, 1, deadline - time.monotonic()):
                ethertype = struct.unpack_from("!H", frame, 12)[0]
                if ethertype == 0x0806 and frame[28:32] == socket.inet_aton(address4):
                    arps.append(frame)
                elif ethertype == 0x86DD and frame[20] == 58 and frame[54] == 136:
                    advertisements.append(frame)

    assert len(arps) == 1, "one gratuitous ARP"
    arp = arps[0]
    assert arp[0:6] == b"\xff" * 6 and arp[6:12] == mac  # broadcast, from the pod
    hardware, protocol, _, _, operation = struct.unpack_from("!HHBBH", arp, 14)
    assert (hardware, protocol, operation) == (1, 0x0800, 1)  # an ARP request
    assert arp[22:28] == mac and arp[38:42] == socket.inet_aton(address4)  # sender = target = ip

    packed6 = socket.inet_pton(socket.AF_INET6, address6)
    mine = [frame for frame in advertisements if frame[62:78] == packed6]
    assert mine, "an unsolicited neighbour advertisement for the pod address"
    na = mine[0]
    assert na[0:6] == bytes.fromhex("333300000001") and na[6:12] == mac
    assert na[21] == 255  # hop limit
    assert na[38:54] == socket.inet_pton(socket.AF_INET6, "ff02::1")
    flags = struct.unpack_from("!I", na, 58)[0]
    assert flags & netlink.NA_FLAG_OVERRIDE and not flags & 0x40000000  # override, unsolicited
    assert na[78:80] == b"\x02\x01" and na[80:86] == mac  # target link-layer address option
