"""The pyroute2 type stubs (stubs/pyroute2) against mypy and the real library.

* A sample program that uses pyroute2 0.9.7 the way danm does must pass
  `mypy --strict --disallow-any-expr` with `mypy_path` pointing at the stubs,
  i.e. type-check cleanly without any `Any` leaking out of pyroute2.
* A sample full of misuses must be rejected, with the errors annotated in it.
* As root on Linux, the same sample program is run for real inside two fresh
  network namespaces, so that the return types the stubs promise are checked
  with isinstance() against pyroute2's runtime behaviour.  Everything it
  creates lives in those namespaces, which are removed even on failure.

The stubs themselves are checked with stubtest; see stubs/stubtest-allowlist.txt.
"""

import re
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from mypy import api as mypy_api

STUBS = Path(__file__).resolve().parents[1] / "stubs"

# mypy types every coroutine as Coroutine[Any, Any, T]; with --disallow-any-expr
# mypy 2.4 reports that for `await f()` statements whose f returns None (it does
# not for awaits used as values).  That is mypy's own representation, not an Any
# coming from the stubs, so it is the one --disallow-any-expr error tolerated.
COROUTINE_ARTIFACT = 'Expression type contains "Any" (has type "Coroutine[Any, Any, None]")'

ERROR_RE = re.compile(r"^[^:]+:(\d+): error: (.*?)(?:  \[[a-z-]+\])?$")

# The sample program: what danm does with pyroute2.  Run as
# `python sample.py <netns> <peer-netns>` (both must exist); prints "sample ok".
SAMPLE = '''
"""danm-style use of pyroute2: type-checked against stubs/pyroute2, then run."""

import asyncio
import errno
import socket
import sys
from collections.abc import AsyncGenerator
from typing import assert_type

import pyroute2
from pyroute2 import AsyncIPRoute, IPRoute, NetlinkError, netns
from pyroute2.netlink import nlmsg, nlmsgerr
from pyroute2.netlink.exceptions import NetlinkError as CoreNetlinkError
from pyroute2.netlink.rtnl import RTMGRP_LINK
from pyroute2.netlink.rtnl.fibmsg import fibmsg
from pyroute2.netlink.rtnl.ifaddrmsg import IFA_F_NODAD, ifaddrmsg
from pyroute2.netlink.rtnl.ifinfmsg import IFF_UP, ifinfmsg
from pyroute2.netlink.rtnl.ifinfmsg.plugins.ipvlan import ipvlan
from pyroute2.netlink.rtnl.rtmsg import rtmsg

IPVLAN_MODE_L2 = 0  # pyroute2 0.9.7 takes the kernel's integer mode
TABLE = 100


def lookup(ipr: IPRoute, ifname: str) -> int:
    found = ipr.link_lookup(ifname=ifname)
    assert_type(found, list[int])
    assert isinstance(found, list) and all(isinstance(i, int) for i in found)
    if not found:
        raise LookupError(ifname)
    return found[0]


def add_optional_link(ipr: IPRoute, **spec: object) -> bool:
    """Link kinds whose kernel module may be missing answer EOPNOTSUPP."""
    try:
        ipr.link("add", **spec)
    except NetlinkError as err:
        assert_type(err.code, int)
        if err.code != errno.EOPNOTSUPP:
            raise
        return False
    return True


def exercise_links(ipr: IPRoute, peer_ns: str) -> int:
    ack = ipr.link("add", ifname="dv0", kind="veth", peer={"ifname": "dv1"})
    assert_type(ack, list[nlmsg])
    assert isinstance(ack, list) and all(isinstance(m, nlmsg) for m in ack)
    for msg in ack:
        if isinstance(msg, nlmsgerr):
            assert msg["error"] == 0
    idx = lookup(ipr, "dv0")
    ipr.link("set", index=idx, ifname="dv0r", mtu=1400, address="02:00:00:00:00:01")
    ipr.link("set", index=idx, ifalias="danm")
    ipr.link("set", index=idx, state="up")
    got = ipr.link("get", index=idx)
    assert_type(got, list[ifinfmsg])
    assert isinstance(got, list)
    link = got[0]
    assert isinstance(link, ifinfmsg)
    name = link.get("ifname")
    assert_type(name, str | None)
    assert name == "dv0r"
    assert link.get("mtu") == 1400 and link.get("address") == "02:00:00:00:00:01"
    assert link.get("ifalias") == "danm"
    assert_type(link["index"], int)
    assert link["index"] == idx and link.get("index") == idx
    assert link.get("flags") & IFF_UP and link.get("state") == "up"
    kind = link.get(("linkinfo", "kind"))
    assert_type(kind, str | None)
    assert kind == "veth"
    ipr.link("set", index=idx, state="down")
    assert not ipr.link("get", index=idx)[0]["flags"] & IFF_UP
    ipr.link("set", index=idx, state="up")

    ipr.link("add", ifname="dbr0", kind="bridge")
    bridge = lookup(ipr, "dbr0")
    ipr.link("add", ifname="dv2", kind="veth", peer="dv3")
    ipr.link("set", index=lookup(ipr, "dv2"), master=bridge)
    assert ipr.link("get", ifname="dv2")[0].get("master") == bridge
    ipr.link("add", ifname="dmv0", kind="macvlan", link=idx, macvlan_mode="bridge")
    ipr.link("add", ifname="dvx0", kind="vxlan", vxlan_id=42, vxlan_link=idx, vxlan_port=4789)
    vx = ipr.link("get", ifname="dvx0")[0]
    assert vx.get(("linkinfo", "kind")) == "vxlan"
    assert vx.get(("linkinfo", "data", "vxlan_id")) == 42
    if add_optional_link(ipr, ifname="dipv0", kind="ipvlan", link=idx, ipvlan_mode=IPVLAN_MODE_L2):
        ipv = ipr.link("get", ifname="dipv0")[0]
        assert ipv.get(("linkinfo", "data", "ipvlan_mode")) == IPVLAN_MODE_L2
    assert ipvlan.modes["IPVLAN_MODE_L2"] == IPVLAN_MODE_L2
    add_optional_link(ipr, ifname="dvl0", kind="vlan", link=idx, vlan_id=10)
    add_optional_link(ipr, ifname="ddm0", kind="dummy")

    links = ipr.get_links()
    assert_type(links, tuple[ifinfmsg, ...])
    assert isinstance(links, tuple) and all(isinstance(x, ifinfmsg) for x in links)
    names = {x.get("ifname", "") for x in links}
    assert {"lo", "dv0r", "dv1", "dbr0", "dmv0", "dvx0"} <= names, names
    dumped = ipr.link("dump", ifname="dv0r")
    assert isinstance(dumped, tuple) and [x["index"] for x in dumped] == [idx]
    up = ipr.link_lookup(lambda msg: msg.get("flags") & IFF_UP != 0)
    assert idx in up

    # move the peer into another netns (by name) and delete links
    ipr.link("set", index=lookup(ipr, "dv1"), net_ns_fd=peer_ns)
    assert ipr.link_lookup(ifname="dv1") == []
    ipr.link("del", index=lookup(ipr, "dmv0"))
    try:
        ipr.link("del", index=lookup(ipr, "dbr0") + 10000)
    except NetlinkError as err:
        assert err.code == errno.ENODEV, err
    else:
        raise AssertionError("deleting a missing link must fail")
    return idx


def exercise_addresses(ipr: IPRoute, idx: int) -> None:
    done = ipr.addr("add", index=idx, address="10.200.0.1", prefixlen=24)
    assert isinstance(done, list)
    ipr.addr("add", index=idx, address="fd00:200::1", prefixlen=64, flags=IFA_F_NODAD)
    ipr.addr("replace", index=idx, address="fd00:200::1", prefixlen=64, flags=IFA_F_NODAD)
    addrs = ipr.get_addr(index=idx)
    assert_type(addrs, tuple[ifaddrmsg, ...])
    assert isinstance(addrs, tuple) and all(isinstance(a, ifaddrmsg) for a in addrs)
    by_addr: dict[str, ifaddrmsg] = {}
    for addr in addrs:
        address = addr.get("address")
        assert_type(address, str | None)
        if address is not None:
            by_addr[address] = addr
    v4, v6 = by_addr["10.200.0.1"], by_addr["fd00:200::1"]
    assert v4.get("prefixlen") == 24 and v4["index"] == idx and v4.get("family") == socket.AF_INET
    assert v6.get("flags") & IFA_F_NODAD
    assert v6.get("family") == socket.AF_INET6
    only_v6 = ipr.get_addr(family=socket.AF_INET6, index=idx)
    assert {a.get("address") for a in only_v6} >= {"fd00:200::1"}
    ipr.addr("del", index=idx, address="fd00:200::1", prefixlen=64)
    assert "fd00:200::1" not in {a.get("address") for a in ipr.addr("dump", index=idx)}


def exercise_routes_and_rules(ipr: IPRoute, idx: int) -> None:
    ipr.route("add", dst="10.201.0.0/16", gateway="10.200.0.254")
    ipr.route("replace", dst="10.202.0.0/16", oif=idx, table=TABLE)
    routes = ipr.get_routes(table=TABLE)
    assert_type(routes, tuple[rtmsg, ...])
    assert isinstance(routes, tuple) and all(isinstance(r, rtmsg) for r in routes)
    mine = [r for r in routes if r.get("dst") == "10.202.0.0"]
    assert len(mine) == 1
    assert mine[0].get("dst_len") == 16 and mine[0].get("table") == TABLE
    assert mine[0].get("oif") == idx
    main = [r for r in ipr.route("dump", table=254) if r.get("dst") == "10.201.0.0"]
    assert main and main[0].get("gateway") == "10.200.0.254"
    got = ipr.route("get", dst="10.201.1.1")
    assert_type(got, list[rtmsg])
    assert isinstance(got, list) and got[0].get("gateway") == "10.200.0.254"
    ipr.route("del", dst="10.201.0.0/16", gateway="10.200.0.254")
    ipr.route("del", dst="10.202.0.0/16", oif=idx, table=TABLE)

    ipr.rule("add", table=TABLE, priority=1000, src="10.200.0.0", src_len=24)
    rules = ipr.get_rules(family=socket.AF_INET)
    assert_type(rules, tuple[fibmsg, ...])
    assert isinstance(rules, tuple) and all(isinstance(r, fibmsg) for r in rules)
    prio: dict[int, fibmsg] = {}
    for rule in rules:
        priority = rule.get("priority")
        assert_type(priority, int | None)
        if priority is not None:
            prio[priority] = rule
    assert prio[1000].get("table") == TABLE and prio[1000].get("src") == "10.200.0.0"
    ipr.rule("del", table=TABLE, priority=1000, src="10.200.0.0", src_len=24)
    assert 1000 not in {r.get("priority") for r in ipr.rule("dump", family=socket.AF_INET)}


async def exercise_async(ns: str) -> list[str]:
    async with AsyncIPRoute(netns=ns, flags=0) as ipr:
        dump = await ipr.get_links()
        assert_type(dump, AsyncGenerator[ifinfmsg, None])
        assert isinstance(dump, AsyncGenerator)
        names = [link.get("ifname", "") async for link in dump]
        idx = (await ipr.link_lookup(ifname="dv0r"))[0]
        await ipr.link("set", index=idx, mtu=1450)
        assert (await ipr.link("get", index=idx))[0].get("mtu") == 1450
        await ipr.addr("add", index=idx, address="10.203.0.1", prefixlen=24)
        addrs = [a.get("address") async for a in await ipr.addr("dump", index=idx)]
        assert "10.203.0.1" in addrs
        await ipr.route("add", dst="10.204.0.0/16", oif=idx, table=TABLE)
        routes = await ipr.poll(ipr.route, "dump", table=TABLE, timeout=2)
        assert_type(routes, list[rtmsg])
        assert any(r.get("dst") == "10.204.0.0" for r in routes)
        await ipr.rule("add", table=TABLE, priority=2000)
        assert [r async for r in await ipr.get_rules(priority=2000)]
        await ipr.rule("del", table=TABLE, priority=2000)
        try:
            await ipr.link("get", ifname="no-such-link")
        except NetlinkError as err:
            assert err.code == errno.ENODEV
        async with AsyncIPRoute(netns=ns, flags=0) as monitor:
            await monitor.bind(groups=RTMGRP_LINK)
            await ipr.link("set", index=idx, state="down")
            events = monitor.get()
            async for event in events:
                assert isinstance(event, nlmsg)
                assert_type(event["event"], object)
                break
            await events.aclose()
    return names


def exercise_netns(ns: str, peer_ns: str) -> None:
    assert_type(netns.listnetns(), list[str])
    assert {ns, peer_ns} <= set(netns.listnetns())
    try:
        IPRoute(netns=f"{ns}-missing", flags=0)
    except FileNotFoundError:
        pass
    else:
        raise AssertionError("flags=0 must not create a netns")
    assert f"{ns}-missing" not in pyroute2.netns.listnetns()
    with IPRoute(netns=f"/var/run/netns/{peer_ns}", flags=0) as ipr:
        moved = lookup(ipr, "dv1")
        ipr.link("set", index=moved, ifname="eth0", state="up")
        assert ipr.link("get", index=moved)[0].get("ifname") == "eth0"
    netns.pushns(peer_ns)
    try:
        with IPRoute() as ipr:
            assert lookup(ipr, "eth0") == moved
    finally:
        netns.popns()


def main(ns: str, peer_ns: str) -> None:
    with IPRoute(netns=ns, flags=0) as ipr:
        idx = exercise_links(ipr, peer_ns)
        exercise_addresses(ipr, idx)
        exercise_routes_and_rules(ipr, idx)
    names = asyncio.run(exercise_async(ns))
    assert "dv0r" in names, names
    exercise_netns(ns, peer_ns)
    try:
        raise CoreNetlinkError(errno.EEXIST)
    except NetlinkError as err:
        assert err.code == errno.EEXIST


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
    print("sample ok")
'''

# Each line marked `# E: <message>` must produce exactly that mypy error.
MISUSE = '''
from pyroute2 import AsyncIPRoute, IPRoute, NetlinkError


def sync_misuse(ipr: IPRoute) -> None:
    name: str = ipr.link_lookup(ifname="eth0")  # E: Incompatible types in assignment (expression has type "list[int]", variable has type "str")
    ipr.link(5, ifname="eth0")  # E: No overload variant of "link" of "IPRoute" matches argument types "int", "str"
    ipr.rule("replace", table=100, priority=10)  # E: No overload variant of "rule" of "IPRoute" matches argument types "str", "int", "int"
    ipr.link("show")  # E: No overload variant of "link" of "IPRoute" matches argument type "str"
    link = ipr.link("get", index=1)[0]
    mtu: int = link.get("mtu")  # E: Incompatible types in assignment (expression has type "int | None", variable has type "int")
    try:
        ipr.link("del", index=1)
    except NetlinkError as err:
        err.code.upper()  # E: "int" has no attribute "upper"
    for route in ipr.get_routes():
        route.get("dst").startswith("10.")  # E: Item "None" of "str | None" has no attribute "startswith"


async def async_misuse(ipr: AsyncIPRoute) -> None:
    for link in await ipr.link("dump"):  # E: "AsyncGenerator[ifinfmsg, None]" has no attribute "__iter__" (not iterable)
        pass
    idx: int = await ipr.link_lookup(ifname="eth0")  # E: Incompatible types in assignment (expression has type "list[int]", variable has type "int")
'''


@pytest.fixture(scope="module")
def mypy_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("mypy-cache")


def run_mypy(tmp_path: Path, cache: Path, source: str, *flags: str) -> tuple[list[tuple[int, str]], str]:
    """Type-check `source` with --strict against the stubs; return (errors, report)."""
    config = tmp_path / "mypy.ini"
    config.write_text(
        "[mypy]\n"
        "python_version = 3.11\n"
        "strict = True\n"
        "warn_unreachable = True\n"
        "warn_unused_ignores = True\n"
        f"mypy_path = {STUBS}\n"
    )
    program = tmp_path / "pyroute2_sample.py"
    program.write_text(source)
    stdout, stderr, status = mypy_api.run(
        ["--config-file", str(config), "--cache-dir", str(cache), *flags, str(program)]
    )
    report = stdout + stderr
    assert status in (0, 1) and not stderr, report  # 2 would be a crash / bad invocation
    errors = []
    for line in stdout.splitlines():
        match = ERROR_RE.match(line)
        if match:
            errors.append((int(match.group(1)), match.group(2)))
    assert status == (1 if errors else 0), report
    return errors, report


def test_sample_type_checks_without_any(tmp_path: Path, mypy_cache: Path) -> None:
    errors, report = run_mypy(tmp_path, mypy_cache, SAMPLE, "--disallow-any-expr")
    unexpected = [e for e in errors if e[1] != COROUTINE_ARTIFACT]
    assert not unexpected, report


def test_misuse_is_rejected(tmp_path: Path, mypy_cache: Path) -> None:
    expected = {
        lineno: line.split("# E: ", 1)[1]
        for lineno, line in enumerate(MISUSE.splitlines(), start=1)
        if "# E: " in line
    }
    assert len(expected) == 9
    errors, report = run_mypy(tmp_path, mypy_cache, MISUSE)
    assert sorted(errors) == sorted(expected.items()), report


def test_sample_runs_against_the_kernel(tmp_path: Path) -> None:
    """Needs root (network namespaces), as the whole suite does: it fails rather than skips."""
    from pyroute2 import netns

    program = tmp_path / "pyroute2_sample.py"
    program.write_text(SAMPLE)
    suffix = uuid.uuid4().hex[:8]
    names = [f"danm-stubs-{suffix}", f"danm-stubs-{suffix}-peer"]
    created: list[str] = []
    try:
        for name in names:
            netns.create(name)
            created.append(name)
        result = subprocess.run(
            [sys.executable, str(program), *names],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 0, result.stdout + result.stderr
        assert result.stdout.strip() == "sample ok", result.stdout + result.stderr
    finally:
        for name in created:
            if name in netns.listnetns():
                netns.remove(name)
    assert not set(names) & set(netns.listnetns())


def test_stubtest_agrees_with_the_installed_pyroute2(tmp_path: Path) -> None:
    """stubtest compares every stubbed signature with the runtime objects of pyroute2."""
    config = tmp_path / "stubtest.ini"
    config.write_text(f"[mypy]\nmypy_path = {STUBS}\n")
    done = subprocess.run(
        [
            sys.executable, "-m", "mypy.stubtest", "pyroute2",
            "--mypy-config-file", str(config),
            "--ignore-missing-stub",
            "--allowlist", str(STUBS / "stubtest-allowlist.txt"),
        ],
        capture_output=True, text=True, timeout=300, check=False, cwd=tmp_path,
    )
    assert done.returncode == 0, done.stdout + done.stderr
