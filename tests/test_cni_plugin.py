"""The danm CNI plugin on the host, run as a runtime runs it: refusals, rollback, DEL, STATUS, GC.

The host kernel has no ipvlan, so every ADD that reaches link creation fails here with 103: the
successful paths are tested in user-mode Linux (tests/kernel/test_cni_ipvlan.py). What the host
can prove is that every refusal carries the exact CNI code and names its culprit, and that a
failed ADD leaves nothing behind: no DanmEp, no allocated bit, no link in the pod's or the host's
namespace. Each danm process costs about 0.2 s, so the cases share one API server and networks.
"""

import json
import os
import re
import socket
import subprocess
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import msgspec
import pytest

from danm import endpoints, ipam, kube, nodestate
from danm.types import DanmEp, InterfaceRequest, Network
from cnilib import (
    NODE,
    Outcome,
    Plugin,
    create,
    create_network,
    create_pod,
    danmeps,
    host_links,
    links_in,
    netns,
    network,
    set_bits,
    unique,
    wait_for,
)
from testlib import load_fixture

# Links danm could leave in the host namespace: an IPVLAN's temporary name (the first 15
# characters of its DanmEp's UUID) or a pod interface name. Other people's tests create links
# on this host at the same time, so only new links that look like danm's count as leftovers.
DANM_LIKE_LINK = re.compile(r"^([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]|eth\d+|ext\d*|averyveryverylongprefix\d*)$")
LONG_PREFIX = "averyveryverylongprefix"


@pytest.fixture(scope="module")
def client(kubeconfig: Path) -> Iterator[kube.ApiClient]:
    with kube.ApiClient(kube.load_config(str(kubeconfig))) as made:
        yield made


@pytest.fixture(scope="module")
def nets(client: kube.ApiClient) -> None:
    """Networks on the loopback device as parent: it exists on every host, and link creation
    fails on it (no ipvlan here) only once everything before it has been done."""
    create_network(client, "plain", host_device="lo", cidr="10.81.0.0/24", net6="fd81::/64")
    create_network(client, "second", host_device="lo", cidr="10.82.0.0/24")
    create_network(client, "tenants", host_device="lo", cidr="10.84.0.0/24", allowed_tenants=["other"])
    create_network(client, "long", host_device="lo", cidr="10.85.0.0/24", container_prefix=LONG_PREFIX)
    create_network(client, "sriov", network_type="sriov", cidr="10.86.0.0/24")
    create_network(client, "wide", kind="ClusterNetwork", host_device="lo", cidr="10.87.0.0/24")


@pytest.fixture
def plugin(kubeconfig: Path, tmp_path: Path) -> Plugin:
    return Plugin(kubeconfig, tmp_path)


@pytest.fixture(scope="module")
def dead_kubeconfig(kubeconfig: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The server's kubeconfig, pointing at a local port nobody listens on."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    document = json.loads(kubeconfig.read_text())
    document["clusters"][0]["cluster"]["server"] = f"https://127.0.0.1:{port}"
    path = tmp_path_factory.mktemp("dead") / "config"
    path.write_text(json.dumps(document))
    return path


def server_of(kubeconfig: Path) -> str:
    server: str = json.loads(kubeconfig.read_text())["clusters"][0]["cluster"]["server"]
    return server.removeprefix("https://")


def deadline() -> float:
    return time.monotonic() + 10.0


# --------------------------------------------------------------------------------------------
# What a failed invocation must leave as it found it


class Snapshot:
    """The state a failed ADD must not change: every network's bitmaps, the DanmEps, and the
    danm-looking links of the host."""

    def __init__(self, client: kube.ApiClient) -> None:
        self.bitmaps = bitmaps(client)
        self.endpoints = {ep.metadata.name for ep in danmeps(client)}
        self.links = host_links()

    def assert_unchanged(self, client: kube.ApiClient) -> None:
        assert bitmaps(client) == self.bitmaps
        assert {ep.metadata.name for ep in danmeps(client)} == self.endpoints
        appeared = {name for name in host_links() - self.links if DANM_LIKE_LINK.match(name)}
        assert not appeared, f"links left in the host namespace: {appeared}"


def bitmaps(client: kube.ApiClient) -> dict[str, tuple[str, str]]:
    result: dict[str, tuple[str, str]] = {}
    for kind in ("DanmNet", "TenantNetwork", "ClusterNetwork"):
        found, _ = client.list(kube.network_resource(kind), "", Network)
        for net in found:
            options = net.spec.options
            result[f"{kind}/{net.metadata.namespace}/{net.metadata.name}"] = (options.alloc, options.alloc6)
    return result


def assert_error(outcome: Outcome, code: int, *fragments: str) -> None:
    """A failed invocation: exit 1, nothing on stdout but the one error document."""
    assert outcome.returncode == 1, outcome
    document = json.loads(outcome.stdout)  # one JSON document and nothing else
    assert set(document) <= {"cniVersion", "code", "msg", "details"}, document
    assert document["code"] == code, outcome
    for fragment in fragments:
        assert fragment in document["msg"], (fragment, outcome)


# --------------------------------------------------------------------------------------------
# ADD refused


def one(network_name: str, **fields: Any) -> list[dict[str, Any]]:
    return [{"network": network_name, **fields}]


# id: (the pod's annotation, expected code, fragments of the message)
ANNOTATION_CASES: dict[str, tuple[list[dict[str, Any]] | str, int, tuple[str, ...]]] = {
    "malformed-json": ('[{"network": "plain"', 7, ("danm.io/interfaces", "JSON")),
    "unknown-key": (
        [{"network": "plain", "ip": "dynamic"}, {"network": "second", "colour": "red"}],
        7,
        ("entry 1", "'colour'"),
    ),
    "two-networks": ([{"network": "plain", "clusterNetwork": "wide"}], 7, ("entry 0", "exactly one network")),
    "missing-network": (
        [{"network": "plain", "ip": "dynamic"}, {"tenantNetwork": "nosuch", "ip": "dynamic"}],
        100,
        ("entry 1", "TenantNetwork default/nosuch"),
    ),
    "missing-cluster-network": ([{"clusterNetwork": "nosuch"}], 100, ("entry 0", "ClusterNetwork nosuch")),
    "static-outside-cidr": (one("plain", ip="10.99.0.5/24"), 7, ("DanmNet default/plain", "10.99.0.5")),
    "static-malformed": (one("plain", ip="10.81.0.300"), 7, ("entry 0", "'ip'", "10.81.0.300")),
    "static6-outside-net6": (one("plain", ip6="fd99::5/64"), 7, ("DanmNet default/plain", "fd99::5")),
    "tenant-not-allowed": (
        one("tenants", ip="dynamic"),
        102,
        ("DanmNet default/tenants", "namespace default", "AllowedTenants"),
    ),
    "long-interface-name": (
        [{"network": "plain", "ip": "dynamic"}, {"network": "long", "ip": "dynamic"}],
        7,
        ("annotation entry 1", LONG_PREFIX + "1", "15"),
    ),
    "proutes-without-rt-tables": (
        one("plain", ip="dynamic", proutes={"10.9.0.0/16": "10.81.0.1"}),
        7,
        ("DanmNet default/plain", "proutes", "rt_tables"),
    ),
    "sriov-without-device-pool": (one("sriov", ip="dynamic"), 7, ("DanmNet default/sriov", "device_pool")),
}


@pytest.mark.parametrize("case", ANNOTATION_CASES, ids=list(ANNOTATION_CASES))
def test_add_refuses_a_bad_annotation_and_leaves_nothing(
    client: kube.ApiClient, nets: None, plugin: Plugin, case: str
) -> None:
    interfaces, code, fragments = ANNOTATION_CASES[case]
    pod = unique("pa-")
    create_pod(client, pod, interfaces)
    before = Snapshot(client)
    with netns() as path:
        outcome = plugin.run("ADD", container_id=pod, netns=path, pod=pod)
        assert_error(outcome, code, *fragments)
        assert links_in(path) == {"lo"}
    before.assert_unchanged(client)
    # every failed ADD tells the pod why, refusals before anything was created too
    events, _ = client.list(kube.EVENTS, "default", dict)
    (event,) = [event for event in events if event["involvedObject"]["name"] == pod]
    assert event["type"] == "Warning" and event["reason"] == "DanmNetworkSetupFailed"
    assert event["message"] == outcome.msg


def good_args(pod: str) -> str:
    return f"K8S_POD_NAMESPACE=default;K8S_POD_NAME={pod};K8S_POD_INFRA_CONTAINER_ID={pod}"


# id: (Plugin.run keyword arguments, config overrides, expected code, fragments); "{args}" in
# CNI_ARGS stands for a complete set of the pod's arguments
INVOCATION_CASES: dict[str, tuple[dict[str, Any], dict[str, Any], int, tuple[str, ...]]] = {
    "no-pod-name": ({"args": "K8S_POD_NAMESPACE=default;K8S_POD_INFRA_CONTAINER_ID=c1"}, {}, 4, ("K8S_POD_NAME",)),
    "unknown-cni-arg": ({"args": "{args};FOO=bar"}, {}, 4, ("FOO", "CNI_ARGS")),
    "no-netns": ({"netns": ""}, {}, 4, ("CNI_NETNS",)),
    "relative-netns": ({"netns": "run/netns/x"}, {}, 4, ("CNI_NETNS", "run/netns/x")),
    "missing-netns": ({"netns": "/run/netns/danm-t-nosuchns"}, {}, 103, ("/run/netns/danm-t-nosuchns",)),
    "not-json": ({"stdin": b"{this is not json"}, {}, 6, ("network config",)),
    "wrong-field-type": ({}, {"interfaceDeadlineSeconds": "x"}, 7, ("interfaceDeadlineSeconds",)),
    "out-of-range": ({}, {"interfaceDeadlineSeconds": 0}, 7, ("interfaceDeadlineSeconds",)),
    "unsupported-version": ({}, {"cniVersion": "9.9.9"}, 1, ("9.9.9",)),
}


@pytest.mark.parametrize("case", INVOCATION_CASES, ids=list(INVOCATION_CASES))
def test_add_refuses_a_bad_invocation(
    client: kube.ApiClient, nets: None, plugin: Plugin, case: str
) -> None:
    keywords, overrides, code, fragments = INVOCATION_CASES[case]
    pod = unique("pi-")
    create_pod(client, pod, one("plain", ip="dynamic"))
    before = Snapshot(client)
    with netns() as path:
        run: dict[str, Any] = {"container_id": pod, "netns": path, "pod": pod, **keywords, **overrides}
        if isinstance(run.get("args"), str):
            run["args"] = run["args"].format(args=good_args(pod))
        outcome = plugin.run("ADD", **run)
        assert_error(outcome, code, *fragments)
        assert links_in(path) == {"lo"}
    assert not os.path.exists("/run/netns/danm-t-nosuchns"), "danm created a network namespace"
    before.assert_unchanged(client)


def test_add_with_the_api_server_unreachable(
    client: kube.ApiClient, nets: None, dead_kubeconfig: Path, tmp_path: Path
) -> None:
    pod = unique("pu-")
    create_pod(client, pod, one("plain", ip="dynamic"))
    before = Snapshot(client)
    with netns() as path:
        outcome = Plugin(dead_kubeconfig, tmp_path).run("ADD", container_id=pod, netns=path, pod=pod)
        assert_error(outcome, 11, server_of(dead_kubeconfig), "Connection refused")
        assert links_in(path) == {"lo"}
    before.assert_unchanged(client)


def test_add_on_an_exhausted_pool(client: kube.ApiClient, nets: None, plugin: Plugin) -> None:
    name = unique("tiny-")
    create_network(client, name, host_device="lo", cidr="10.83.0.0/30")
    taken = []
    with pytest.raises(ipam.PoolExhaustedError):
        for _ in range(8):
            taken.append(reserve(client, name))
    assert taken, "a /30 has room for at least one address"
    pod = unique("px-")
    create_pod(client, pod, one(name, ip="dynamic"))
    before = Snapshot(client)
    with netns() as path:
        outcome = plugin.run("ADD", container_id=pod, netns=path, pod=pod)
        assert_error(outcome, 101, f"DanmNet default/{name}")
        assert links_in(path) == {"lo"}
    before.assert_unchanged(client)


def test_failed_add_rolls_back_every_interface(client: kube.ApiClient, nets: None, plugin: Plugin) -> None:
    """Both interfaces get their addresses and DanmEps, then fail at link creation (no ipvlan
    on the host): all is undone, the error has one line per network, the pod gets an Event.
    The link step is held back (test hook) to see the reservations made before the rollback."""
    pod = unique("pr-")
    interfaces = [
        {"network": "plain", "ip": "dynamic", "ip6": "dynamic"},
        {"clusterNetwork": "wide", "ip": "10.87.0.77"},
    ]
    create_pod(client, pod, interfaces)
    before = Snapshot(client)
    hooks = json.dumps({"delayLinkMs": 1500})
    with netns() as path, ThreadPoolExecutor(1) as pool:
        running = pool.submit(plugin.run, "ADD", container_id=pod, netns=path, pod=pod, env={"DANM_TEST_HOOKS": hooks})
        wait_for(lambda: len([ep for ep in danmeps(client) if ep.spec.pod == pod]) == 2)
        during = bitmaps(client)
        outcome = running.result()
        assert_error(outcome, 103)
        lines = outcome.msg.splitlines()
        assert len(lines) == 2, lines
        culprits = (
            "DanmNet default/plain (annotation entry 0, interface eth0)",
            "ClusterNetwork wide (annotation entry 1, interface eth1)",
        )
        for line, culprit in zip(lines, culprits):
            assert line.startswith(f"{culprit}: cannot create ipvlan on lo"), lines
        assert links_in(path) == {"lo"}
    plain, wide = "DanmNet/default/plain", "ClusterNetwork//wide"
    for key, family in ((plain, 0), (plain, 1), (wide, 0)):
        assert set_bits(during[key][family]) == set_bits(before.bitmaps[key][family]) + 1, (key, family)
    before.assert_unchanged(client)
    events, _ = client.list(kube.EVENTS, "default", dict)
    (event,) = [e for e in events if e["involvedObject"]["name"] == pod]
    assert event["type"] == "Warning" and event["reason"] == "DanmNetworkSetupFailed"
    assert "DanmNet default/plain" in event["message"] and "ClusterNetwork wide" in event["message"]
    assert event["source"]["host"] == NODE


def test_output_and_log(client: kube.ApiClient, nets: None, plugin: Plugin) -> None:
    """stdout has the error document only; the log file and stderr get the same JSON lines,
    which name the pod and the container."""
    pod = unique("pl-")
    create_pod(client, pod, one("tenants", ip="dynamic"))
    with netns() as path:
        outcome = plugin.run("ADD", container_id=pod, netns=path, pod=pod)
    assert_error(outcome, 102)
    file_lines = (plugin.workdir / "danm.log").read_text().splitlines()
    stderr_lines = [line for line in outcome.stderr.splitlines() if line.startswith("{")]
    assert file_lines == stderr_lines and file_lines
    records = [json.loads(line) for line in file_lines]
    assert all(record["container"] == pod and record["command"] == "ADD" for record in records)
    (failed,) = [record for record in records if record["event"] == "failed"]
    assert failed["pod"] == f"default/{pod}" and failed["code"] == 102 and failed["level"] == "error"
    assert "tenants" in failed["msg"]


# --------------------------------------------------------------------------------------------
# DEL


def reserve(client: kube.ApiClient, name: str) -> str:
    """A dynamic IPv4 address of DanmNet default/``name``, reserved as ADD would."""
    return ipam.reserve_on_api(client, "DanmNet", "default", name, "dynamic", "", deadline()).ip4


def labelled_endpoint(
    client: kube.ApiClient, net: Network, container_id: str, ip4: str, node: str = NODE, ifname: str = "eth0"
) -> DanmEp:
    """A DanmEp as danm's ADD records it: with the identity labels (through new_endpoint)."""
    made = endpoints.new_endpoint(
        namespace="default",
        pod_name=unique("pod-"),
        pod_uid="",
        pod_labels={"app": "x"},
        network=net,
        request=InterfaceRequest(network=net.metadata.name, ip="dynamic"),
        ifname=ifname,
        container_id=container_id,
        netns="/run/netns/danm-t-gone",
        node=node,
        ip4=ip4,
        ip6="",
    )
    assert made.metadata.labels is not None
    assert made.metadata.labels.items() >= endpoints.identity_labels(container_id, node, "").items()
    return client.create(kube.DANMEPS, made)


def legacy_endpoint(client: kube.ApiClient, network_name: str, container_id: str, ip4: str, host: str = NODE) -> DanmEp:
    """A DanmEp in the original's format (tests/fixtures/danmep.json): no identity labels."""
    document = load_fixture("danmep.json")
    name = str(unique("legacy-"))
    document["metadata"] = {"name": name, "namespace": "default", "labels": document["metadata"]["labels"]}
    spec = document["spec"]
    spec.update(NetworkName=network_name, NetworkType="ipvlan", EndpointID=name, Host=host, CID=container_id)
    spec["Interface"]["Address"] = ip4
    spec["netns"] = "/run/netns/danm-t-gone"
    return msgspec.json.decode(json.dumps(create(client, kube.DANMEPS, document)), type=DanmEp)


def endpoint_names(client: kube.ApiClient) -> set[str]:
    return {ep.metadata.name for ep in danmeps(client)}


def bit_count(client: kube.ApiClient, name: str, kind: str = "DanmNet") -> int:
    return set_bits(network(client, name, kind=kind).spec.options.alloc)


def test_del_of_nothing_and_of_an_empty_container_id(plugin: Plugin, nets: None) -> None:
    for _ in range(2):
        done = plugin.run("DEL", container_id=unique("nothing-"), netns="/run/netns/danm-t-gone")
        assert done.returncode == 0 and done.stdout == b"", done
    assert_error(plugin.run("DEL", container_id="", args=""), 4, "CNI_CONTAINERID")


def test_del_releases_its_containers_endpoints_only(client: kube.ApiClient, nets: None, plugin: Plugin) -> None:
    """One container's DanmEp in the original's format (no labels: found by spec.CID), another
    container's as danm writes it; a third container's DanmEps of both kinds must survive."""
    legacy_cid, labelled_cid, other, other_labelled = (unique("cid-") + digit * 52 for digit in "0123")
    plain = network(client, "plain")
    before_plain, before_second = bit_count(client, "plain"), bit_count(client, "second")
    legacy = legacy_endpoint(client, "plain", legacy_cid, reserve(client, "plain"))
    labelled = labelled_endpoint(client, network(client, "second"), labelled_cid, reserve(client, "second"))
    others = {
        legacy_endpoint(client, "plain", other, reserve(client, "plain")).metadata.name,
        labelled_endpoint(client, plain, other_labelled, reserve(client, "plain")).metadata.name,
    }
    assert bit_count(client, "plain") == before_plain + 3
    for _ in range(2):  # DEL is repeatable
        for container in (legacy_cid, labelled_cid):
            done = plugin.run("DEL", container_id=container, netns="/run/netns/danm-t-gone")
            assert done.returncode == 0 and done.stdout == b"", done
        names = endpoint_names(client)
        assert legacy.metadata.name not in names and labelled.metadata.name not in names
        assert others <= names, "DEL touched another container's DanmEps"
        assert bit_count(client, "plain") == before_plain + 2
        assert bit_count(client, "second") == before_second
    # the runtime may omit CNI_ARGS on DEL: the container ID alone is enough
    for container in (other, other_labelled):
        assert plugin.run("DEL", container_id=container, netns="/run/netns/danm-t-gone", args="").returncode == 0
    assert bit_count(client, "plain") == before_plain
    assert not others & endpoint_names(client)


def test_del_when_the_network_is_gone(client: kube.ApiClient, nets: None, plugin: Plugin) -> None:
    name = unique("gone-")
    net = create_network(client, name, host_device="lo", cidr="10.88.0.0/24")
    container = unique("cid-")
    ep = labelled_endpoint(client, net, container, reserve(client, name))
    client.delete(kube.network_resource("DanmNet"), "default", name)
    done = plugin.run("DEL", container_id=container, netns="/run/netns/danm-t-gone")
    assert done.returncode == 0, done
    assert ep.metadata.name not in endpoint_names(client)


def test_del_with_the_api_server_unreachable(
    client: kube.ApiClient, nets: None, dead_kubeconfig: Path, tmp_path: Path
) -> None:
    """11 with a first-failure record while delRetrySeconds last; after them success, with a
    tombstone naming the DanmEps that ADD's node-local record said hold addresses."""
    container = unique("cid-")
    run_dir, state_dir = tmp_path / "run", tmp_path / "state"
    with netns() as path:
        # what ADD noted (attach.record_attachment): a link with an address, one without
        inside = ["ip", "-n", Path(path).name, "link", "add", "eth0", "type", "veth", "peer", "name", "eth1"]
        subprocess.run(inside, check=True)
        holding = nodestate.TombstoneEndpoint("default", "ep-a", "plain", "DanmNet", "10.81.0.9/24", "", "eth0", path)
        addressless = nodestate.TombstoneEndpoint("default", "ep-b", "wide", "ClusterNetwork", "none", "", "eth1", path)
        noted = [holding, addressless]
        nodestate.write_tombstone(str(run_dir / "attachments"), container, noted, "attached", time.time())

        retrying = Plugin(dead_kubeconfig, tmp_path)
        outcome = retrying.run("DEL", container_id=container, netns=path)
        assert_error(outcome, 11, container, "API server", server_of(dead_kubeconfig))
        assert links_in(path) == {"lo"}, "DEL removes the noted links even without the API server"
    record = state_dir / "del-failures" / f"{container}.del-failure"
    first = float(record.read_text())
    assert time.time() - 60 < first <= time.time()
    assert not (state_dir / "tombstones").exists()
    assert_error(retrying.run("DEL", container_id=container, netns="/run/netns/danm-t-gone"), 11)
    assert float(record.read_text()) == first, "the first failure is kept, not overwritten"

    giving_up = Plugin(dead_kubeconfig, tmp_path, delRetrySeconds=0)
    done = giving_up.run("DEL", container_id=container, netns="/run/netns/danm-t-gone")
    assert done.returncode == 0 and done.stdout == b"", done
    (tombstone,) = nodestate.read_tombstones(str(state_dir / "tombstones"))[0]
    assert tombstone.container_id == container and tombstone.endpoints == [holding]
    assert server_of(dead_kubeconfig) in tombstone.reason
    assert not record.exists()
    assert not (run_dir / "attachments" / f"{container}.tombstone.json").exists()


# --------------------------------------------------------------------------------------------
# STATUS, CHECK


def test_status_ready_and_not_ready(plugin: Plugin, dead_kubeconfig: Path, tmp_path: Path) -> None:
    ready = plugin.run("STATUS")
    assert ready.returncode == 0 and ready.stdout == b"", ready
    dead = Plugin(dead_kubeconfig, tmp_path / "dead")
    (tmp_path / "dead").mkdir()
    assert_error(dead.run("STATUS"), 50, "not ready", "unreachable", server_of(dead_kubeconfig))


def test_status_is_cached(kubeconfig: Path, tmp_path: Path) -> None:
    """Within statusCacheSeconds STATUS repeats its last answer without looking again."""
    copy = tmp_path / "kubeconfig"
    copy.write_text(kubeconfig.read_text())
    plugin = Plugin(copy, tmp_path, statusCacheSeconds=1.5)
    assert plugin.run("STATUS").returncode == 0
    copy.unlink()
    cached = plugin.run("STATUS")
    assert cached.returncode == 0 and cached.stdout == b"", cached
    time.sleep(1.6)
    assert_error(plugin.run("STATUS"), 50, str(copy), "not readable")


def jwt(claims: dict[str, Any]) -> str:
    import base64

    def part(document: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(document).encode()).decode().rstrip("=")

    return f"{part({'alg': 'RS256', 'typ': 'JWT'})}.{part(claims)}.c2lnbmF0dXJl"


def test_status_with_an_expired_token(kubeconfig: Path, tmp_path: Path) -> None:
    document = json.loads(kubeconfig.read_text())
    document["users"][0]["user"] = {"token": jwt({"sub": "danm", "exp": int(time.time()) - 60})}
    expired = tmp_path / "kubeconfig"
    expired.write_text(json.dumps(document))
    assert_error(Plugin(expired, tmp_path).run("STATUS"), 50, "token has expired")


def test_check_without_endpoints(plugin: Plugin, nets: None) -> None:
    container = unique("cid-")
    with netns() as path:
        assert_error(plugin.run("CHECK", container_id=container, netns=path), 3, container)


# --------------------------------------------------------------------------------------------
# GC


def test_gc_releases_stale_endpoints_of_this_node(client: kube.ApiClient, nets: None, plugin: Plugin) -> None:
    live, stale, legacy_stale, far = (unique(prefix) for prefix in ("live-", "stale-", "legacy-", "far-"))
    plain = network(client, "plain")
    before = bit_count(client, "plain")
    kept = [
        labelled_endpoint(client, plain, live, reserve(client, "plain")),
        labelled_endpoint(client, plain, far, reserve(client, "plain"), node="node-b"),
        legacy_endpoint(client, "plain", far, reserve(client, "plain"), host="node-b"),
    ]
    released = [
        labelled_endpoint(client, plain, stale, reserve(client, "plain")),
        legacy_endpoint(client, "plain", legacy_stale, reserve(client, "plain")),
    ]
    assert bit_count(client, "plain") == before + 5
    time.sleep(1.1)  # creation timestamps have whole seconds; GC spares what it cannot judge
    valid: dict[str, Any] = {"cni.dev/valid-attachments": [{"containerID": live, "ifname": "eth0"}]}
    collected = plugin.run("GC", cniVersion="1.1.0", gcMinAgeSeconds=0, **valid)
    assert collected.returncode == 0 and collected.stdout == b"", collected
    names = endpoint_names(client)
    assert {ep.metadata.name for ep in kept} <= names
    assert not {ep.metadata.name for ep in released} & names
    assert bit_count(client, "plain") == before + 3
    for ep in kept:
        endpoints.release(client, ep, deadline())
    assert bit_count(client, "plain") == before


def test_gc_needs_the_valid_attachments(plugin: Plugin) -> None:
    assert_error(plugin.run("GC", cniVersion="1.1.0"), 7, "cni.dev/valid-attachments")
