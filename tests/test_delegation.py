"""Delegation to the real reference CNI plugins (Debian containernetworking-plugins) on the host.

Each delegate is wrapped by a recording shim (tests/delegatelib.py) that logs the command, the
environment's CNI_IFNAME and the exact config danm passed, then execs the real plugin: the tests
assert on what the plugin was given and on what the kernel then shows in the pod's netns.
"""

import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from danm import kube
from cnidriver import run_driver
from cnilib import (
    Outcome,
    Plugin,
    create_network,
    create_pod,
    danmeps,
    links_in,
    netns,
    network,
    set_bits,
    unique,
)
from delegatelib import CniBin, ip_json, veth_parent

REFERENCE = Path("/usr/lib/cni")


@pytest.fixture(scope="module")
def client(kubeconfig: Path) -> Iterator[kube.ApiClient]:
    with kube.ApiClient(kube.load_config(str(kubeconfig))) as made:
        yield made


@pytest.fixture
def bins(tmp_path: Path) -> CniBin:
    return CniBin(tmp_path / "bin", tmp_path / "record.jsonl")


@pytest.fixture
def parent() -> Iterator[str]:
    with veth_parent(mtu=1400) as name:
        yield name


def plugin_for(kubeconfig: Path, tmp_path: Path, bins: CniBin, **config: Any) -> Plugin:
    cni_dir = tmp_path / "net.d"
    cni_dir.mkdir(exist_ok=True)
    return Plugin(kubeconfig, tmp_path, cniDir=str(cni_dir), **config)


def run(plugin: Plugin, bins: CniBin, verb: str, pod: str, path: str, **kwargs: Any) -> Outcome:
    return plugin.run(verb, container_id=pod, netns=path, pod=pod, env=bins.env(), **kwargs)


def bits(client: kube.ApiClient, name: str) -> tuple[int, int]:
    options = network(client, name).spec.options
    return set_bits(options.alloc), set_bits(options.alloc6)


@pytest.mark.parametrize("ipam_plugin", ["fakeipam", "static"])
def test_macvlan_dual_stack_with_routes_and_policy_routes(
    client: kube.ApiClient, kubeconfig: Path, tmp_path: Path, bins: CniBin, parent: str, ipam_plugin: str
) -> None:
    name = unique("mv")
    create_network(
        client, name, network_type="macvlan", host_device=parent, cidr="10.81.0.0/24", net6="fd81::/64",
        routes={"10.99.0.0/16": "10.81.0.254"}, routes6={"fd99::/64": "fd81::fe"}, rt_tables=50,
    )
    before = bits(client, name)
    pod = unique("pm-")
    create_pod(client, pod, [{"network": name, "ip": "dynamic", "ip6": "dynamic", "proutes": {"10.77.0.0/16": "10.81.0.1"}}])
    bins.record("macvlan")
    plugin = plugin_for(kubeconfig, tmp_path, bins, ipamPlugin=ipam_plugin)
    with netns() as path:
        added = run(plugin, bins, "ADD", pod, path)
        assert added.returncode == 0, added
        result = added.json()
        (address4, address6) = [ip["address"] for ip in result["ips"]]
        assert address4.startswith("10.81.0.") and address6.startswith("fd81::")
        # the exact generated config, at the highest version macvlan speaks
        (call,) = bins.calls("macvlan", "ADD")
        ipam = call["config"].pop("ipam")
        assert call["config"] == {
            "cniVersion": "1.0.0", "name": name, "type": "macvlan", "master": parent, "mode": "bridge", "mtu": 1400,
        }
        assert call["ifname"] == "eth0"
        # the runtime's CNI_ARGS reach the delegate, which is told to ignore the K8S_ keys
        assert call["args"].startswith("IgnoreUnknown=1;") and f"K8S_POD_NAME={pod}" in call["args"]
        if ipam_plugin == "fakeipam":
            assert ipam == {"type": "fakeipam", "ips": [{"ipcidr": address4, "version": 4}, {"ipcidr": address6, "version": 6}]}
        else:
            assert ipam["type"] == "static" and [a["address"] for a in ipam["addresses"]] == [address4, address6]
        # the kernel: a macvlan in bridge mode with the parent's MTU, danm's addresses (IPv6
        # without DAD), main-table routes, the policy rule and its table
        (link,) = [link for link in ip_json(path, "-d", "link", "show") if link["ifname"] == "eth0"]
        assert link["linkinfo"]["info_kind"] == "macvlan" and link["linkinfo"]["info_data"]["mode"] == "bridge"
        assert link["mtu"] == 1400
        addresses = {a["local"]: a for a in ip_json(path, "addr", "show", "eth0")[0]["addr_info"] if a.get("scope") == "global"}
        assert set(addresses) == {address4.split("/")[0], address6.split("/")[0]}
        assert addresses[address6.split("/")[0]].get("nodad") is True and not addresses[address6.split("/")[0]].get("tentative")
        assert ip_json(path, "route", "show", "10.99.0.0/16")[0]["gateway"] == "10.81.0.254"
        assert ip_json(path, "-6", "route", "show", "fd99::/64")[0]["gateway"] == "fd81::fe"
        rule = [r for r in ip_json(path, "rule", "show") if r.get("table") == "50"]
        assert rule and rule[0]["src"] == address4.split("/")[0] and rule[0]["priority"] == 1050
        assert ip_json(path, "route", "show", "table", "50")[0]["dst"] == "10.77.0.0/16"
        (ep,) = [ep for ep in danmeps(client) if ep.spec.pod == pod]
        assert (ep.spec.interface.address, ep.spec.interface.address_ipv6) == (address4, address6)
        assert ep.spec.interface.mac_address == link["address"]  # taken from the delegate's result
        assert bits(client, name) == (before[0] + 1, before[1] + 1)
        deleted = run(plugin, bins, "DEL", pod, path)
        assert deleted.returncode == 0, deleted
        assert links_in(path) == {"lo"}
        assert [call["config"].get("ipam") for call in bins.calls("macvlan", "DEL")] == [ipam]
    assert bits(client, name) == before
    assert not [ep for ep in danmeps(client) if ep.spec.pod == pod]


BRIDGE_KEYS: dict[str, Any] = {
    "type": "bridge",
    "bridge": "",  # set per test
    "isGateway": False,
    "hairpinMode": True,
    "mtu": 1450,
    "x-vendor": {"nested": [1, 2, {"deep": 3.5}], "flag": None},
}


def bridge_conf(bridge: str, network_id: str, data_dir: Path, **extra: Any) -> dict[str, Any]:
    return {
        "cniVersion": "0.3.1", "name": network_id, **BRIDGE_KEYS, "bridge": bridge,
        "ipam": {"type": "host-local", "subnet": "10.83.0.0/24", "dataDir": str(data_dir)}, **extra,
    }


@pytest.fixture
def bridge_name() -> Iterator[str]:
    name = unique("dbr")
    yield name
    subprocess.run(["ip", "link", "del", name], check=False, capture_output=True)


@pytest.mark.parametrize("request_ip", ["dynamic", "", "none"])
def test_static_conf_keeps_every_key_and_swaps_only_ipam(
    client: kube.ApiClient, kubeconfig: Path, tmp_path: Path, bins: CniBin, bridge_name: str, request_ip: str
) -> None:
    """A static .conf is passed key for key; danm's IPAM replaces the file's when the pod asks
    for an address on a network with a cidr, the file's own IPAM works otherwise, ip: none
    strips it."""
    network_id = unique("st")
    create_network(client, network_id, network_type="bridge", cidr="10.82.0.0/24")
    plugin = plugin_for(kubeconfig, tmp_path, bins, ipamPlugin="fakeipam")
    original = bridge_conf(bridge_name, network_id, tmp_path / "host-local")
    (tmp_path / "net.d" / f"{network_id}.conf").write_text(json.dumps(original))
    bins.record("bridge")
    pod = unique("ps-")
    create_pod(client, pod, [{"network": network_id, "ip": request_ip}] if request_ip else [{"network": network_id}])
    before = bits(client, network_id)
    with netns() as path:
        added = run(plugin, bins, "ADD", pod, path)
        assert added.returncode == 0, added
        (call,) = bins.calls("bridge", "ADD")
        passed = call["config"]
        assert passed.pop("cniVersion") == "1.0.0"  # the bridge plugin's highest version
        expected = {key: value for key, value in original.items() if key not in ("cniVersion", "ipam")}
        got_ipam = passed.pop("ipam", None)
        assert passed == expected  # every other key, with its JSON type (1450 stays an integer)
        assert json.dumps(passed["mtu"]) == "1450"
        globals4 = [a["local"] for a in ip_json(path, "addr", "show", "eth0")[0]["addr_info"] if a["family"] == "inet"]
        (ep,) = [ep for ep in danmeps(client) if ep.spec.pod == pod]
        if request_ip == "dynamic":
            assert got_ipam is not None and got_ipam["type"] == "fakeipam"
            assert globals4 == [ep.spec.interface.address.split("/")[0]] and globals4[0].startswith("10.82.0.")
            assert bits(client, network_id)[0] == before[0] + 1
        elif request_ip == "":
            assert got_ipam == original["ipam"]
            assert globals4[0].startswith("10.83.0.")  # host-local of the file
            assert ep.spec.interface.address == globals4[0] + "/24"  # the DanmEp learns it
            assert bits(client, network_id) == before
        else:
            assert got_ipam is None and globals4 == []
            assert ep.spec.interface.address == "none"
        deleted = run(plugin, bins, "DEL", pod, path)
        assert deleted.returncode == 0, deleted
        assert links_in(path) == {"lo"}
    assert bits(client, network_id) == before
    if request_ip == "":
        assert not [f for f in (tmp_path / "host-local").rglob("10.83.0.*")], "host-local kept the address"


def test_conflist_chain_with_portmap_through_libcni(
    client: kube.ApiClient, kubeconfig: Path, tmp_path: Path, bins: CniBin, bridge_name: str
) -> None:
    """bridge then portmap: ADD in order with prevResult, DEL in reverse; the runtime's
    portMappings reach portmap because both danm's config and portmap's declare the capability."""
    network_id = unique("cl")
    create_network(client, network_id, network_type="bridge", cidr="10.84.0.0/24")
    host_port = 20000 + int(network_id[-4:], 16) % 10000
    conflist = {
        "cniVersion": "0.4.0",
        "name": network_id,
        "plugins": [
            {"type": "bridge", "bridge": bridge_name, "ipam": {"type": "host-local", "subnet": "10.85.0.0/24", "dataDir": str(tmp_path / "hl")}},
            {"type": "portmap", "capabilities": {"portMappings": True}, "snat": False},
        ],
    }
    cni_dir = tmp_path / "net.d"
    cni_dir.mkdir()
    (cni_dir / f"{network_id}.conflist").write_text(json.dumps(conflist))
    bins.record("bridge")
    bins.record("portmap")
    pod = unique("pl-")
    create_pod(client, pod, [{"network": network_id, "ip": "dynamic"}])
    plugin = Plugin(kubeconfig, tmp_path, cniDir=str(cni_dir), capabilities={"portMappings": True})
    conf = plugin.conf_file()
    mappings = {"portMappings": [{"hostPort": host_port, "containerPort": 80, "protocol": "tcp"}]}
    args = f"IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME={pod};K8S_POD_INFRA_CONTAINER_ID={pod}"
    with netns() as path:
        def drive(verb: str) -> Any:
            return run_driver(
                verb, conf, container_id=pod, netns=path, args=args, capabilities=mappings,
                cni_path=bins.cni_path, cache_dir=tmp_path / "cache", env=bins.extra_env(),
            )

        added = drive("add")
        assert added.returncode == 0, added
        address = added.json()["ips"][0]["address"].split("/")[0]
        assert address.startswith("10.84.0.")  # danm's IPAM replaced the bridge's host-local
        (bridge_call,) = bins.calls("bridge", "ADD")
        (portmap_call,) = bins.calls("portmap", "ADD")
        assert "prevResult" not in bridge_call["config"]
        assert portmap_call["config"]["prevResult"]["ips"][0]["address"].startswith(address)
        assert portmap_call["config"]["runtimeConfig"] == mappings
        assert "runtimeConfig" not in bridge_call["config"]  # bridge declares no capability
        nat = subprocess.run(["iptables", "-t", "nat", "-S"], check=True, capture_output=True, text=True).stdout
        assert f"--dport {host_port}" in nat and f"{address}:80" in nat
        deleted = drive("del")
        assert deleted.returncode == 0, deleted
        order = [call["plugin"] for call in bins.calls(None, "DEL")]
        assert order == ["portmap", "bridge"]
        nat = subprocess.run(["iptables", "-t", "nat", "-S"], check=True, capture_output=True, text=True).stdout
        assert f"--dport {host_port}" not in nat
        assert links_in(path) == {"lo"}


def test_a_failing_delegate_is_named_and_rolled_back(
    client: kube.ApiClient, kubeconfig: Path, tmp_path: Path, bins: CniBin, parent: str, bridge_name: str
) -> None:
    good, bad = unique("ok"), unique("bad")
    create_network(client, good, network_type="macvlan", host_device=parent, cidr="10.86.0.0/24")
    create_network(client, bad, network_type="bridge", cidr="10.87.0.0/24")
    plugin = plugin_for(kubeconfig, tmp_path, bins)
    # the bridge plugin refuses an MTU it cannot parse
    (tmp_path / "net.d" / f"{bad}.conf").write_text(json.dumps({"cniVersion": "1.0.0", "name": bad, "type": "bridge", "bridge": bridge_name, "mtu": "huge"}))
    pod = unique("pf-")
    create_pod(client, pod, [{"network": good, "ip": "dynamic"}, {"network": bad, "ip": "dynamic"}])
    before = (bits(client, good), bits(client, bad))
    with netns() as path:
        added = run(plugin, bins, "ADD", pod, path)
        assert added.returncode == 1 and added.code == 104, added
        assert f"DanmNet default/{bad}" in added.msg and "CNI plugin bridge failed" in added.msg
        assert links_in(path) == {"lo"}
    assert (bits(client, good), bits(client, bad)) == before
    assert not [ep for ep in danmeps(client) if ep.spec.pod == pod]


def test_a_hanging_delegate_is_killed_with_its_children(
    client: kube.ApiClient, kubeconfig: Path, tmp_path: Path, bins: CniBin
) -> None:
    marker = unique("hang-")
    bins.script("hang", f"""#!/bin/sh
if [ "$CNI_COMMAND" = VERSION ]; then echo '{{"cniVersion":"1.0.0","supportedVersions":["1.0.0"]}}'; exit 0; fi
if [ "$CNI_COMMAND" = DEL ]; then exit 0; fi
sh -c 'while :; do sleep 1; done' {marker}-child &
exec sh -c 'while :; do sleep 1; done' {marker}
""")
    network_id = unique("hg")
    create_network(client, network_id, network_type="hang", cidr="10.88.0.0/24")
    plugin = plugin_for(kubeconfig, tmp_path, bins, delegateDeadlineSeconds=1)
    (tmp_path / "net.d" / f"{network_id}.conf").write_text(json.dumps({"cniVersion": "1.0.0", "name": network_id, "type": "hang"}))
    pod = unique("ph-")
    create_pod(client, pod, [{"network": network_id, "ip": "dynamic"}])
    before = bits(client, network_id)
    with netns() as path:
        started = time.monotonic()
        added = run(plugin, bins, "ADD", pod, path)
        assert added.returncode == 1 and added.code == 11, added
        assert "hang did not finish" in added.msg
        assert time.monotonic() - started < 10
    time.sleep(0.2)  # the kill is synchronous; this only lets the kernel reap
    leftovers = subprocess.run(["pgrep", "-f", marker], capture_output=True, text=True).stdout.split()
    assert leftovers == [], "orphan processes of the hanging delegate"
    assert bits(client, network_id) == before
    assert not [ep for ep in danmeps(client) if ep.spec.pod == pod]


@pytest.mark.parametrize(
    ("network_type", "network_id", "culprit"),
    [
        ("../../../bin/sh", "plain", "NetworkType"),
        ("bridge", "../../etc/passwd", "NetworkID"),
        ("..", "x", "NetworkType"),
        ("bridge", "..", "NetworkID"),
        ("br idge", "x", "NetworkType"),
    ],
)
def test_unsafe_types_and_ids_are_refused_before_any_exec(
    client: kube.ApiClient, kubeconfig: Path, tmp_path: Path, bins: CniBin, network_type: str, network_id: str, culprit: str
) -> None:
    name = unique("un")
    create_network(client, name, network_type=network_type, network_id=network_id, cidr="10.89.0.0/24")
    bins.record("bridge")
    plugin = plugin_for(kubeconfig, tmp_path, bins)
    pod = unique("pu-")
    create_pod(client, pod, [{"network": name, "ip": "dynamic"}])
    with netns() as path:
        added = run(plugin, bins, "ADD", pod, path)
    assert added.returncode == 1 and added.code == 7 and culprit in added.msg, added
    assert bins.calls(None, None) == []
    assert not [ep for ep in danmeps(client) if ep.spec.pod == pod]


def test_versions_are_asked_once_and_the_highest_is_used(
    client: kube.ApiClient, kubeconfig: Path, tmp_path: Path, bins: CniBin, parent: str
) -> None:
    name = unique("vv")
    create_network(client, name, network_type="macvlan", host_device=parent, cidr="10.90.0.0/24")
    bins.record("macvlan")
    plugin = plugin_for(kubeconfig, tmp_path, bins, cniVersion="1.1.0")
    for round_ in range(2):
        pod = unique(f"pv{round_}-")
        create_pod(client, pod, [{"network": name, "ip": "dynamic"}])
        with netns() as path:
            added = run(plugin, bins, "ADD", pod, path)
            assert added.returncode == 0 and added.json()["cniVersion"] == "1.1.0", added
            assert run(plugin, bins, "DEL", pod, path).returncode == 0
    assert len(bins.calls("macvlan", "VERSION")) == 1  # cached under runDir
    assert {call["config"]["cniVersion"] for call in bins.calls("macvlan", "ADD")} == {"1.0.0"}


def test_del_when_the_static_file_is_gone(
    client: kube.ApiClient, kubeconfig: Path, tmp_path: Path, bins: CniBin, bridge_name: str
) -> None:
    network_id = unique("gn")
    create_network(client, network_id, network_type="bridge", cidr="10.91.0.0/24")
    plugin = plugin_for(kubeconfig, tmp_path, bins)
    conf = tmp_path / "net.d" / f"{network_id}.conf"
    conf.write_text(json.dumps({"cniVersion": "1.0.0", "name": network_id, "type": "bridge", "bridge": bridge_name}))
    pod = unique("pg-")
    create_pod(client, pod, [{"network": network_id, "ip": "dynamic"}])
    before = bits(client, network_id)
    with netns() as path:
        assert run(plugin, bins, "ADD", pod, path).returncode == 0
        conf.unlink()
        deleted = run(plugin, bins, "DEL", pod, path)
        assert deleted.returncode == 0, deleted
        assert "delegate.skipped" in deleted.stderr
    assert bits(client, network_id) == before
    assert not [ep for ep in danmeps(client) if ep.spec.pod == pod]


def test_flannel_host_local_file_is_removed_by_bare_address(
    client: kube.ApiClient, kubeconfig: Path, tmp_path: Path, bins: CniBin
) -> None:
    bridge = unique("fl")
    data_dir = Path("/var/lib/cni/networks") / bridge
    data_dir.mkdir(parents=True)
    try:
        bins.script("flannel", """#!/bin/sh
if [ "$CNI_COMMAND" = VERSION ]; then echo '{"cniVersion":"1.0.0","supportedVersions":["1.0.0"]}'; exit 0; fi
if [ "$CNI_COMMAND" = ADD ]; then echo '{"cniVersion":"1.0.0","ips":[{"address":"10.244.1.5/24"}]}'; fi
exit 0
""")
        network_id = unique("fn")
        create_network(client, network_id, network_type="flannel")
        plugin = plugin_for(kubeconfig, tmp_path, bins)
        (tmp_path / "net.d" / f"{network_id}.conf").write_text(json.dumps({"cniVersion": "1.0.0", "name": network_id, "type": "flannel"}))
        pod = unique("pn-")
        create_pod(client, pod, [{"network": network_id}])
        (data_dir / "10.244.1.5").write_text("x")
        env = {**bins.env(), "FLANNEL_BRIDGE": bridge}
        with netns() as path:
            added = plugin.run("ADD", container_id=pod, netns=path, pod=pod, env=env)
            assert added.returncode == 0, added
            assert "interface.no-kernel-link" in added.stderr  # the fake creates no link
            (ep,) = [ep for ep in danmeps(client) if ep.spec.pod == pod]
            assert ep.spec.interface.address == "10.244.1.5/24"
            assert plugin.run("DEL", container_id=pod, netns=path, pod=pod, env=env).returncode == 0
        assert not (data_dir / "10.244.1.5").exists()
    finally:
        subprocess.run(["rm", "-rf", str(data_dir)], check=False)


def test_a_plain_delegated_interface_loads_no_netlink_library(
    client: kube.ApiClient, kubeconfig: Path, tmp_path: Path, bins: CniBin, parent: str
) -> None:
    """pyroute2 costs ~250 ms at start-up: a macvlan interface with an IPv4 address and no
    routes is set up and torn down without it (sysctls and link facts need no netlink)."""
    name = unique("np")
    create_network(client, name, network_type="macvlan", host_device=parent, cidr="10.92.0.0/24")
    plugin = plugin_for(kubeconfig, tmp_path, bins)
    pod = unique("pn-")
    create_pod(client, pod, [{"network": name, "ip": "dynamic"}])
    profile = {**bins.env(), "PYTHONPROFILEIMPORTTIME": "1"}
    with netns() as path:
        added = plugin.run("ADD", container_id=pod, netns=path, pod=pod, env=profile)
        assert added.returncode == 0, added
        deleted = plugin.run("DEL", container_id=pod, netns=path, pod=pod, env=profile)
        assert deleted.returncode == 0, deleted
    for outcome in (added, deleted):
        imported = {line.split("|")[-1].strip().split(".")[0] for line in outcome.stderr.splitlines() if line.startswith("import time:")}
        assert "msgspec" in imported and not imported & {"pyroute2", "asyncio", "grpc", "kubernetes", "typer"}


def test_gc_runs_the_orphans_delegate_del_with_its_own_container(
    client: kube.ApiClient, kubeconfig: Path, tmp_path: Path, bins: CniBin, parent: str
) -> None:
    name = unique("gc")
    create_network(client, name, network_type="macvlan", host_device=parent, cidr="10.93.0.0/24")
    before = bits(client, name)
    bins.record("macvlan")
    plugin = plugin_for(kubeconfig, tmp_path, bins)
    pod = unique("po-")
    create_pod(client, pod, [{"network": name, "ip": "dynamic"}])
    with netns() as path:
        assert run(plugin, bins, "ADD", pod, path).returncode == 0
        time.sleep(1.1)  # GC judges only what was created in an earlier second
        nothing_valid: dict[str, Any] = {"cni.dev/valid-attachments": []}
        collected = plugin.run("GC", env=bins.env(), gcMinAgeSeconds=0, **nothing_valid)
        assert collected.returncode == 0, collected
        (call,) = bins.calls("macvlan", "DEL")
        assert (call["netns"], call["ifname"], call["containerid"]) == (path, "eth0", pod)
        assert links_in(path) == {"lo"}
    assert bits(client, name) == before
    assert not [ep for ep in danmeps(client) if ep.spec.pod == pod]


def test_ten_delegated_pods_at_once(
    client: kube.ApiClient, kubeconfig: Path, tmp_path: Path, bins: CniBin, parent: str
) -> None:
    """Separate danm processes racing on one macvlan network, the version cache and the node's
    slots: distinct addresses, and DEL restores the bitmap exactly."""
    import threading

    name = unique("cc")
    create_network(client, name, network_type="macvlan", host_device=parent, cidr="10.94.0.0/24", net6="fd94::/64")
    before = network(client, name).spec.options.alloc, network(client, name).spec.options.alloc6
    plugin = plugin_for(kubeconfig, tmp_path, bins, maxConcurrentInvocations=4)
    pods = [unique(f"pc{index}-") for index in range(10)]
    for pod in pods:
        create_pod(client, pod, [{"network": name, "ip": "dynamic", "ip6": "dynamic"}])
    contexts = [netns() for _ in pods]
    paths = [context.__enter__() for context in contexts]
    try:
        for verb in ("ADD", "DEL"):
            outcomes: dict[str, Outcome] = {}

            def one(pod: str, path: str, verb: str = verb) -> None:
                outcomes[pod] = run(plugin, bins, verb, pod, path)

            threads = [threading.Thread(target=one, args=(pod, path)) for pod, path in zip(pods, paths)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            failed = {pod: outcome for pod, outcome in outcomes.items() if outcome.returncode != 0}
            assert not failed, failed
            if verb == "ADD":
                addresses = [tuple(ip["address"] for ip in outcomes[pod].json()["ips"]) for pod in pods]
                assert len({pair[0] for pair in addresses}) == 10 and len({pair[1] for pair in addresses}) == 10
                for path, pair in zip(paths, addresses):
                    shown = {a["local"] for a in ip_json(path, "addr", "show", "eth0")[0]["addr_info"]}
                    assert {address.split("/")[0] for address in pair} <= shown
    finally:
        for context in contexts:
            context.__exit__(None, None, None)
    after = network(client, name).spec.options
    assert (after.alloc, after.alloc6) == before
    assert not [ep for ep in danmeps(client) if ep.spec.pod in pods]
