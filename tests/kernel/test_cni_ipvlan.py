"""The danm CNI plugin end to end in a real kernel: built-in IPVLAN on real parents.

Runs inside user-mode Linux (`scripts/kernel-test tests/kernel`), with the embedded API server in
the same boot. The runtime's side is played by libcni (tests/cnidriver) or, where libcni 1.1.2
cannot (CNI 1.1.0, GC), by hand; results are decoded with the per-version Structs. A dummy link
stands in for the host NIC; the VLAN and VxLAN parents netwatcher would create are made here.
Every danm process starts slowly in this guest (Python ~0.5 s, pyroute2 ~3 s), so the interface
deadline is raised and the tests batch their checks.
"""

import json
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec
import pytest

from danm import kube
from danm.types import NETWORK_STATUS_ANNOTATION, ResultV03, ResultV1
from cnidriver import DriverOutcome, run_driver
from cnilib import (
    Outcome,
    Plugin,
    create_network,
    create_pod,
    danmeps,
    host_links,
    links_in,
    netns,
    network,
    set_bits,
    unique,
)
from testlib import danm_binary

PHYS = "ktphys"
VLAN_PARENT = "kv.300"
VXLAN_PARENT = "vx_kx"
SLOW_GUEST = {"interfaceDeadlineSeconds": 240}


def ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True)


def ip_json(netns_path: str, *args: str) -> Any:
    name = Path(netns_path).name
    out = subprocess.run(["ip", "-n", name, "-j", *args], check=True, capture_output=True, text=True).stdout
    return json.loads(out or "[]")


@pytest.fixture(scope="module")
def parents() -> Iterator[None]:
    """The host NIC (a dummy), and the VLAN and VxLAN host interfaces of two networks."""
    ip("link", "add", PHYS, "type", "dummy")
    try:
        ip("link", "set", PHYS, "up", "mtu", "9000")
        ip("link", "add", "link", PHYS, "name", VLAN_PARENT, "mtu", "8000", "type", "vlan", "id", "300")
        ip("link", "set", VLAN_PARENT, "up")
        ip("link", "add", VXLAN_PARENT, "mtu", "1450", "type", "vxlan", "id", "600", "dev", PHYS, "dstport", "4789")
        ip("link", "set", VXLAN_PARENT, "up")
        yield
    finally:
        subprocess.run(["ip", "link", "del", VXLAN_PARENT], check=False)
        subprocess.run(["ip", "link", "del", PHYS], check=False)  # takes the VLAN with it


@pytest.fixture(scope="module")
def client(kubeconfig: Path) -> Iterator[kube.ApiClient]:
    with kube.ApiClient(kube.load_config(str(kubeconfig))) as made:
        yield made


@pytest.fixture(scope="module")
def nets(client: kube.ApiClient, parents: None) -> dict[str, str]:
    """Networks shared by the tests: dual-stack with routes and policy routing on the NIC, a
    VLAN network with a container_prefix, a VxLAN ClusterNetwork."""
    create_network(
        client,
        "dual",
        host_device=PHYS,
        cidr="10.20.0.0/24",
        routes={"10.99.0.0/16": "10.20.0.254"},
        net6="fd20::/64",
        routes6={"fd99::/64": "fd20::fe"},
        rt_tables=100,
    )
    create_network(client, "vlan", network_id="kv", vlan=300, cidr="10.30.0.0/24", container_prefix="ext")
    create_network(client, "vxlan", kind="ClusterNetwork", network_id="kx", vxlan=600, cidr="10.40.0.0/24")
    create_network(client, "crowd", host_device=PHYS, cidr="10.50.0.0/24")
    return {}


@pytest.fixture
def plugin(kubeconfig: Path, tmp_path: Path) -> Plugin:
    return Plugin(kubeconfig, tmp_path, **SLOW_GUEST)


def bitmaps(client: kube.ApiClient) -> dict[str, tuple[str, str]]:
    result = {}
    for name, kind in (("dual", "DanmNet"), ("vlan", "DanmNet"), ("vxlan", "ClusterNetwork"), ("crowd", "DanmNet")):
        options = network(client, name, kind=kind).spec.options
        result[name] = (options.alloc, options.alloc6)
    return result


def unset(bitmap_pair: tuple[str, str]) -> int:
    return set_bits(bitmap_pair[0]) + set_bits(bitmap_pair[1])


def three_interfaces() -> list[dict[str, Any]]:
    return [
        {"network": "dual", "ip": "dynamic", "ip6": "dynamic", "proutes": {"10.77.0.0/16": "10.20.0.1"}},
        {"network": "vlan", "ip": "10.30.0.77"},
        {"clusterNetwork": "vxlan", "ip": "none"},
    ]


def test_three_interfaces_through_libcni(client: kube.ApiClient, nets: dict[str, str], plugin: Plugin, tmp_path: Path) -> None:
    pod = unique("p3-")
    create_pod(client, pod, three_interfaces(), labels={"app": "three", "danm.io/node": "forged"})
    before = bitmaps(client)
    host_before = host_links()
    container = unique("cid-") + "0" * 50  # 64 characters, like a real container ID
    conf = plugin.conf_file()
    args = f"IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME={pod};K8S_POD_INFRA_CONTAINER_ID={container}"

    def drive(verb: str) -> DriverOutcome:
        return run_driver(
            verb, conf, container_id=container, netns=path, args=args,
            cni_path=str(danm_binary().parent), cache_dir=tmp_path / "cache",
        )

    with netns() as path:
        added = drive("add")
        assert added.returncode == 0, added
        result = msgspec.json.decode(added.stdout, type=ResultV1)
        assert result.cni_version == "1.0.0"
        assert [i.name for i in result.interfaces or []] == ["eth0", "ext1", "eth2"]
        assert all(i.sandbox == path for i in result.interfaces or [])
        addresses = {ip_.address: ip_.interface for ip_ in result.ips or []}
        assert addresses["10.30.0.77/24"] == 1
        v4 = [a for a, index in addresses.items() if a.startswith("10.20.")]
        v6 = [a for a, index in addresses.items() if a.startswith("fd20:")]
        assert len(v4) == 1 and len(v6) == 1 and addresses[v4[0]] == 0 and addresses[v6[0]] == 0

        # the kernel agrees: ipvlan L2 links on the right parents, with their MTUs
        links = {link["ifname"]: link for link in ip_json(path, "-d", "link", "show")}
        assert set(links) == {"lo", "eth0", "ext1", "eth2"}
        for name, mtu in (("eth0", 9000), ("ext1", 8000), ("eth2", 1450)):
            info = links[name]["linkinfo"]
            assert info["info_kind"] == "ipvlan" and info["info_data"]["mode"] == "l2", links[name]
            assert links[name]["mtu"] == mtu and "UP" in links[name]["flags"]
        assert not ip_json(path, "addr", "show", "eth2")[0]["addr_info"]  # ip: none
        eth0 = {a["local"] for a in ip_json(path, "addr", "show", "eth0")[0]["addr_info"] if a.get("scope") == "global"}
        assert eth0 == {v4[0].split("/")[0], v6[0].split("/")[0]}
        assert {"dst": "10.99.0.0/16", "gateway": "10.20.0.254"}.items() <= ip_json(path, "route", "show", "10.99.0.0/16")[0].items()
        assert ip_json(path, "-6", "route", "show", "fd99::/64")[0]["gateway"] == "fd20::fe"
        rules = ip_json(path, "rule", "show")
        rule = [r for r in rules if r.get("table") == "100"]
        assert rule and rule[0]["src"] == v4[0].split("/")[0] and rule[0].get("srclen", 32) == 32
        assert ip_json(path, "route", "show", "table", "100")[0]["dst"] == "10.77.0.0/16"
        sysctl = subprocess.run(
            ["ip", "netns", "exec", Path(path).name, "sysctl", "-n", "net.ipv6.conf.eth0.ndisc_notify", "net.ipv6.conf.ext1.disable_ipv6"],
            check=True, capture_output=True, text=True,
        ).stdout.split()
        assert sysctl == ["1", "1"]
        assert host_links() == host_before, "a link was left in the host namespace"

        # DanmEps: pod labels (but not a forged danm.io/ one), identity labels, the spec
        found = [ep for ep in danmeps(client, "default") if ep.spec.pod == pod]
        assert sorted(ep.spec.interface.name for ep in found) == ["eth0", "eth2", "ext1"]
        for ep in found:
            labels = ep.metadata.labels or {}
            assert labels["app"] == "three" and labels["danm.io/node"] == "node-a"
            assert ep.spec.container_id == container and ep.spec.host == "node-a" and ep.spec.netns == path
        assert {ep.spec.interface.name: ep.spec.api_type for ep in found}["eth2"] == "ClusterNetwork"

        # network-status, as Multus writes it
        stored = client.get(kube.PODS, "default", pod, dict)
        status = json.loads(stored["metadata"]["annotations"][NETWORK_STATUS_ANNOTATION])
        assert [entry["interface"] for entry in status] == ["eth0", "ext1", "eth2"]
        assert status[0]["name"] == "default/dual" and status[0]["default"] is True
        assert status[2]["name"] == "vxlan" and "ips" not in status[2]
        assert status[1]["ips"] == ["10.30.0.77"] and status[1]["mac"] == links["ext1"]["address"]

        # CHECK passes, then notices a deleted address
        checked = drive("check")
        assert checked.returncode == 0, checked
        ip("-n", Path(path).name, "addr", "del", "10.30.0.77/24", "dev", "ext1")
        checked = drive("check")
        assert checked.returncode == 2 and checked.error is not None
        assert "ext1 lacks address 10.30.0.77/24" in checked.error.msg

        # DEL removes everything, twice
        for _ in range(2):
            deleted = drive("del")
            assert deleted.returncode == 0, deleted
            assert links_in(path) == {"lo"}
    assert not [ep for ep in danmeps(client, "default") if ep.spec.pod == pod]
    assert bitmaps(client) == before


@pytest.mark.parametrize(
    ("version", "default_kind"),
    [("0.3.0", "DanmNet"), ("0.3.1", "TenantNetwork"), ("0.4.0", "ClusterNetwork"), ("1.1.0", "DanmNet")],
)
def test_result_of_every_version_and_default_network(
    client: kube.ApiClient, nets: dict[str, str], plugin: Plugin, version: str, default_kind: str
) -> None:
    """No annotation: the network named default (DanmNet, then TenantNetwork, then
    ClusterNetwork). Results decode with the version's own Struct."""
    namespace = f"def{version.replace('.', '')}"
    created = create_network(
        client, "default", namespace=namespace, kind=default_kind, host_device=PHYS, cidr="10.60.0.0/24", net6="fd60::/64"
    )
    pod = unique("pd-")
    create_pod(client, pod, None, namespace=namespace)
    with netns() as path:
        added = plugin.run("ADD", container_id=pod, netns=path, pod=pod, namespace=namespace, cniVersion=version)
        assert added.returncode == 0, added
        if version == "1.1.0":
            result1 = msgspec.json.decode(added.stdout, type=ResultV1)
            assert result1.cni_version == version
            assert [ip_.address.startswith("10.60.0.") for ip_ in result1.ips or []] == [True]
            assert (result1.interfaces or [])[0].mtu == 9000  # 1.1.0 reports the MTU
        else:
            result03 = msgspec.json.decode(added.stdout, type=ResultV03)
            assert result03.cni_version == version
            assert [(ip_.version, ip_.interface) for ip_ in result03.ips or []] == [("4", 0)]
            assert "mtu" not in json.loads(added.stdout)["interfaces"][0]
        (ep,) = [ep for ep in danmeps(client, namespace) if ep.spec.pod == pod]
        assert ep.spec.api_type == default_kind and ep.spec.network_name == "default"  # never "" (§11.21)
        deleted = plugin.run("DEL", container_id=pod, netns=path, pod=pod, namespace=namespace, cniVersion=version)
        assert deleted.returncode == 0, deleted
        assert links_in(path) == {"lo"}
    if default_kind == "ClusterNetwork":  # the others find their own namespace's default first
        client.delete(kube.CLUSTERNETWORKS, "", "default")
    else:
        assert network(client, "default", namespace, default_kind).spec.options.alloc == created.spec.options.alloc


def test_a_new_sandbox_of_the_same_pod_releases_the_old_one(
    client: kube.ApiClient, nets: dict[str, str], plugin: Plugin
) -> None:
    """kubelet re-running ADD for a pod UID without a DEL: the stale DanmEps and their links and
    addresses are released first (§2.16)."""
    pod = unique("ps-")
    create_pod(client, pod, [{"network": "crowd", "ip": "dynamic"}])
    before = set_bits(network(client, "crowd").spec.options.alloc)
    with netns() as old, netns() as new:
        assert plugin.run("ADD", container_id=pod + "-1", netns=old, pod=pod).returncode == 0
        added = plugin.run("ADD", container_id=pod + "-2", netns=new, pod=pod)
        assert added.returncode == 0, added
        (ep,) = [ep for ep in danmeps(client, "default") if ep.spec.pod == pod]
        assert ep.spec.container_id == pod + "-2"
        assert links_in(old) == {"lo"} and links_in(new) == {"lo", "eth0"}
        assert set_bits(network(client, "crowd").spec.options.alloc) == before + 1
        assert "endpoint.stale" in added.stderr
        assert plugin.run("DEL", container_id=pod + "-2", netns=new, pod=pod).returncode == 0
    assert set_bits(network(client, "crowd").spec.options.alloc) == before


def test_interfaces_are_built_concurrently(
    client: kube.ApiClient, nets: dict[str, str], plugin: Plugin, tmp_path: Path
) -> None:
    """Each reservation and each link creation delayed by 500 ms: the three interfaces overlap."""
    pod = unique("pp-")
    create_pod(client, pod, three_interfaces())
    record = tmp_path / "hooks"
    hooks = json.dumps({"delayReserveMs": 500, "delayLinkMs": 500, "record": str(record)})
    host_before = host_links()
    with netns() as path:
        added = plugin.run("ADD", container_id=pod, netns=path, pod=pod, env={"DANM_TEST_HOOKS": hooks})
        assert added.returncode == 0, added
        assert links_in(path) == {"lo", "eth0", "ext1", "eth2"}
        assert host_links() == host_before
        steps: dict[str, list[tuple[float, float]]] = {"reserve": [], "link": []}
        for line in record.read_text().splitlines():
            step, _network, began, ended = line.split()
            steps[step].append((float(began), float(ended)))
        for step, spans in steps.items():
            assert len(spans) == 3, steps
            # three 0.5 s delays done one after another would take 1.5 s
            assert max(end for _, end in spans) - min(begin for begin, _ in spans) < 1.0, (step, spans)
        assert plugin.run("DEL", container_id=pod, netns=path, pod=pod).returncode == 0


def test_rollback_when_the_second_of_three_fails(
    client: kube.ApiClient, nets: dict[str, str], plugin: Plugin
) -> None:
    create_network(client, "broken", host_device="nosuchnic", cidr="10.70.0.0/24")
    interfaces = three_interfaces()
    interfaces[1] = {"network": "broken", "ip": "dynamic"}
    pod = unique("pr-")
    create_pod(client, pod, interfaces)
    before = bitmaps(client)
    broken_before = network(client, "broken").spec.options.alloc
    host_before = host_links()
    with netns() as path:
        added = plugin.run("ADD", container_id=pod, netns=path, pod=pod)
        assert added.returncode == 1 and added.code == 103, added
        assert "nosuchnic" in added.msg and "annotation entry 1" in added.msg
        assert len(added.msg.splitlines()) == 1  # only the failed network is reported
        assert links_in(path) == {"lo"}
    assert host_links() == host_before
    assert not [ep for ep in danmeps(client, "default") if ep.spec.pod == pod]
    assert bitmaps(client) == before
    assert set_bits(network(client, "broken").spec.options.alloc) == set_bits(broken_before)
    events, _ = client.list(kube.EVENTS, "default", dict)
    assert any(e["involvedObject"]["name"] == pod and "nosuchnic" in e["message"] for e in events)


def test_gc_reclaims_an_orphan_and_keeps_a_live_pod(
    client: kube.ApiClient, nets: dict[str, str], plugin: Plugin
) -> None:
    live, orphan = unique("pl-"), unique("po-")
    create_pod(client, live, three_interfaces())
    create_pod(client, orphan, [{"network": "crowd", "ip": "dynamic"}])
    with netns() as live_ns, netns() as orphan_ns:
        assert plugin.run("ADD", container_id=live, netns=live_ns, pod=live).returncode == 0
        assert plugin.run("ADD", container_id=orphan, netns=orphan_ns, pod=orphan).returncode == 0
        live_eps = {ep.metadata.name: ep for ep in danmeps(client, "default") if ep.spec.pod == live}
        crowd_before = set_bits(network(client, "crowd").spec.options.alloc)
        time.sleep(1.1)  # creation timestamps have whole seconds; GC spares what it may not judge
        gc_conf: dict[str, Any] = {"cni.dev/valid-attachments": [{"containerID": live, "ifname": "eth0"}], "cniVersion": "1.1.0"}
        collected = plugin.run("GC", gcMinAgeSeconds=0, **gc_conf)
        assert collected.returncode == 0, collected
        assert not [ep for ep in danmeps(client, "default") if ep.spec.pod == orphan]
        assert links_in(orphan_ns) == {"lo"}
        assert set_bits(network(client, "crowd").spec.options.alloc) == crowd_before - 1
        after = {ep.metadata.name: ep for ep in danmeps(client, "default") if ep.spec.pod == live}
        assert after.keys() == live_eps.keys()
        assert links_in(live_ns) == {"lo", "eth0", "ext1", "eth2"}
        assert plugin.run("DEL", container_id=live, netns=live_ns, pod=live).returncode == 0


def run_concurrently(plugin: Plugin, verb: str, pods: list[str], paths: list[str]) -> dict[str, Outcome]:
    """One danm process per pod, all at once; every one must succeed."""
    outcomes: dict[str, Outcome] = {}

    def run(pod: str, path: str) -> None:
        outcomes[pod] = plugin.run(verb, container_id=pod, netns=path, pod=pod, timeout=600)

    threads = [threading.Thread(target=run, args=(pod, path)) for pod, path in zip(pods, paths)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    failed = {pod: outcome for pod, outcome in outcomes.items() if outcome.returncode != 0}
    assert not failed, failed
    return outcomes


def test_twenty_pods_at_once(client: kube.ApiClient, nets: dict[str, str], plugin: Plugin) -> None:
    """20 separate danm processes on one network: distinct addresses; DEL restores the bitmap."""
    before = network(client, "crowd").spec.options.alloc
    pods = [unique(f"pc{index}-") for index in range(20)]
    for pod in pods:
        create_pod(client, pod, [{"network": "crowd", "ip": "dynamic"}])
    namespaces = [netns() for _ in pods]
    paths = [context.__enter__() for context in namespaces]
    try:
        added = run_concurrently(plugin, "ADD", pods, paths)
        addresses = [json.loads(added[pod].stdout)["ips"][0]["address"] for pod in pods]
        assert len(set(addresses)) == 20, addresses
        for pod, path, address in zip(pods, paths, addresses):
            (ep,) = [ep for ep in danmeps(client, "default") if ep.spec.pod == pod]
            assert ep.spec.interface.address == address
            assert address.split("/")[0] in json.dumps(ip_json(path, "addr", "show", "eth0"))
        run_concurrently(plugin, "DEL", pods, paths)
    finally:
        for context in namespaces:
            context.__exit__(None, None, None)
    assert network(client, "crowd").spec.options.alloc == before
    assert not [ep for ep in danmeps(client, "default") if ep.spec.pod in pods]


def import_profile(stderr: str) -> tuple[set[str], float]:
    """Modules imported (from -X importtime lines) and the total import time in ms."""
    rows = [line.split("|") for line in stderr.splitlines() if line.startswith("import time:")]
    rows = [row for row in rows if row[0].split(":")[1].strip().isdigit()]
    return {row[-1].strip() for row in rows}, sum(int(row[0].split(":")[1]) for row in rows) / 1000.0


def test_cni_path_imports_in_a_real_add(client: kube.ApiClient, nets: dict[str, str], plugin: Plugin) -> None:
    """After a successful ADD and DEL no typer, kubernetes or grpc was imported (-X importtime).
    Run with -s to see the import totals."""
    pod = unique("pi-")
    create_pod(client, pod, [{"network": "crowd", "ip": "dynamic"}])
    profile = {"PYTHONPROFILEIMPORTTIME": "1"}
    with netns() as path:
        added = plugin.run("ADD", container_id=pod, netns=path, pod=pod, env=profile)
        assert added.returncode == 0, added
        deleted = plugin.run("DEL", container_id=pod, netns=path, pod=pod, env=profile)
        assert deleted.returncode == 0, deleted
    for verb, outcome in (("ADD", added), ("DEL", deleted)):
        imported, total_ms = import_profile(outcome.stderr)
        # (danm's own modules do not show when compiled: mypyc initialises them natively)
        assert "msgspec" in imported and "pyroute2" in imported
        assert not {name for name in imported if name.split(".")[0] in ("typer", "click", "kubernetes", "grpc")}
        done = [json.loads(line) for line in outcome.stderr.splitlines() if line.startswith("{")]
        elapsed = [line["elapsed_ms"] for line in done if line["event"] == "done"]
        print(
            f"{verb}: {len(imported)} modules imported in {total_ms:.0f} ms; the verb itself took {elapsed[0]} ms (guest)",
            file=sys.stderr,
        )
