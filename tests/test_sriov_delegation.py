"""SR-IOV end to end on the host: devices from a PodResources gRPC server, PFs and VF indices
from a fake sysfs tree, and a recording stand-in for the sriov plugin (the host has no VFs).
The DPDK dummy interfaces need the real-kernel runner: tests/kernel/test_sriov_dpdk.py."""

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from danm import kube
from cnilib import Plugin, create_network, create_pod, danmeps, netns, network, set_bits, unique
from delegatelib import CniBin
from sriovlib import FakePod, FakePodResources, FakeSysfs, FakeVf

POOL = "nokia.k8s.io/sriov_ens1f0"
VF_RESULT: dict[str, Any] = {"interfaces": [{"name": "placeholder", "mac": "02:00:00:00:00:01"}], "ips": []}


@pytest.fixture(scope="module")
def client(kubeconfig: Path) -> Iterator[kube.ApiClient]:
    with kube.ApiClient(kube.load_config(str(kubeconfig))) as made:
        yield made


@pytest.fixture
def sysfs(tmp_path: Path) -> FakeSysfs:
    tree = FakeSysfs(tmp_path / "sys")
    tree.add_pf("ens1f0", "0000:01:00.0", [FakeVf("0000:01:10.0"), FakeVf("0000:01:10.1"), FakeVf("0000:01:10.2")])
    return tree


def sriov_plugin(kubeconfig: Path, tmp_path: Path, sysfs: FakeSysfs, socket: Path) -> Plugin:
    return Plugin(kubeconfig, tmp_path, sysfsRoot=str(sysfs), podResourcesSocket=str(socket), ipamPlugin="fakeipam")


def test_vfs_are_taken_in_order_and_the_config_is_exact(
    client: kube.ApiClient, kubeconfig: Path, tmp_path: Path, sysfs: FakeSysfs
) -> None:
    name = unique("sr")
    create_network(client, name, network_type="sriov", device_pool=POOL, vlan=100, cidr="10.95.0.0/24")
    before = set_bits(network(client, name).spec.options.alloc)
    pod = unique("pr-")
    create_pod(client, pod, [{"network": name, "ip": "dynamic"}, {"network": name, "ip": "10.95.0.50"}])
    bins = CniBin(tmp_path / "bin", tmp_path / "record.jsonl")
    bins.fake("sriov", ["0.3.1", "0.4.0", "1.0.0"], VF_RESULT)
    socket = tmp_path / "kubelet.sock"
    devices = [("app", {POOL: ["0000:01:10.2", "0000:01:10.0"], "other/pool": ["x"]}), ("sidecar", {POOL: ["0000:01:10.1"]})]
    with FakePodResources(socket, [FakePod("default", pod, devices), FakePod("default", "someone-else", devices)]) as kubelet:
        plugin = sriov_plugin(kubeconfig, tmp_path, sysfs, socket)
        with netns() as path:
            added = plugin.run("ADD", container_id=pod, netns=path, pod=pod, env=bins.env())
            assert added.returncode == 0, added
            assert kubelet.calls == {"List": 1}  # asked once per ADD
            calls = {call["ifname"]: call["config"] for call in bins.calls("sriov", "ADD")}
            first, second = calls["eth0"], calls["eth1"]
            # first listed first: the app container's devices in order, then the sidecar's
            assert (first["deviceID"], second["deviceID"]) == ("0000:01:10.2", "0000:01:10.0")
            ipam = first.pop("ipam")
            assert first == {"cniVersion": "1.0.0", "name": name, "type": "sriov", "master": "ens1f0", "vlan": 100, "deviceID": "0000:01:10.2"}
            assert ipam["type"] == "fakeipam" and ipam["ips"][0]["ipcidr"].startswith("10.95.0.")
            assert second["ipam"]["ips"] == [{"ipcidr": "10.95.0.50/24", "version": 4}]
            eps = {ep.spec.interface.name: ep for ep in danmeps(client) if ep.spec.pod == pod}
            assert eps["eth0"].spec.interface.device_id == "0000:01:10.2"
            assert eps["eth1"].spec.interface.device_id == "0000:01:10.0"
            assert "interface.no-kernel-link" in added.stderr  # the stand-in creates no link
            deleted = plugin.run("DEL", container_id=pod, netns=path, pod=pod, env=bins.env())
            assert deleted.returncode == 0, deleted
            assert sorted(call["config"]["deviceID"] for call in bins.calls("sriov", "DEL")) == ["0000:01:10.0", "0000:01:10.2"]
    assert set_bits(network(client, name).spec.options.alloc) == before
    assert not [ep for ep in danmeps(client) if ep.spec.pod == pod]


def test_pool_problems_are_refused_before_anything_is_created(
    client: kube.ApiClient, kubeconfig: Path, tmp_path: Path, sysfs: FakeSysfs
) -> None:
    name = unique("sp")
    create_network(client, name, network_type="sriov", device_pool=POOL, cidr="10.96.0.0/24")
    before = set_bits(network(client, name).spec.options.alloc)
    pod = unique("pp-")
    create_pod(client, pod, [{"network": name, "ip": "dynamic"}, {"network": name, "ip": "dynamic"}])
    bins = CniBin(tmp_path / "bin", tmp_path / "record.jsonl")
    bins.fake("sriov", ["1.0.0"], VF_RESULT)
    socket = tmp_path / "kubelet.sock"
    plugin = sriov_plugin(kubeconfig, tmp_path, sysfs, socket)
    with FakePodResources(socket, [FakePod("default", pod, [("app", {POOL: ["0000:01:10.0"]})])]):
        with netns() as path:
            added = plugin.run("ADD", container_id=pod, netns=path, pod=pod, env=bins.env())
    assert added.returncode == 1 and added.code == 7 and POOL in added.msg and "entry 1" in added.msg, added
    with netns() as path:  # no kubelet socket at all
        added = plugin.run("ADD", container_id=pod, netns=path, pod=pod, env=bins.env())
    assert added.returncode == 1 and str(socket) in added.msg, added
    assert bins.calls("sriov", None) == []
    assert set_bits(network(client, name).spec.options.alloc) == before
    assert not [ep for ep in danmeps(client) if ep.spec.pod == pod]


def test_del_after_the_vf_vanished_still_frees_danms_addresses(
    client: kube.ApiClient, kubeconfig: Path, tmp_path: Path, sysfs: FakeSysfs
) -> None:
    name = unique("sv")
    create_network(client, name, network_type="sriov", device_pool=POOL, cidr="10.97.0.0/24")
    before = set_bits(network(client, name).spec.options.alloc)
    pod = unique("pv-")
    create_pod(client, pod, [{"network": name, "ip": "dynamic"}])
    bins = CniBin(tmp_path / "bin", tmp_path / "record.jsonl")
    bins.fake("sriov", ["1.0.0"], VF_RESULT)
    socket = tmp_path / "kubelet.sock"
    plugin = sriov_plugin(kubeconfig, tmp_path, sysfs, socket)
    with FakePodResources(socket, [FakePod("default", pod, [("app", {POOL: ["0000:01:10.1"]})])]):
        with netns() as path:
            assert plugin.run("ADD", container_id=pod, netns=path, pod=pod, env=bins.env()).returncode == 0
            (sysfs.device_dir("0000:01:10.1") / "physfn").unlink()  # the VF is gone
            deleted = plugin.run("DEL", container_id=pod, netns=path, pod=pod, env=bins.env())
            assert deleted.returncode == 0, deleted
            assert "delegate.skipped" in deleted.stderr
    assert set_bits(network(client, name).spec.options.alloc) == before
    assert not [ep for ep in danmeps(client) if ep.spec.pod == pod]
