"""SR-IOV VFs bound to a user-space driver, end to end in a real kernel: danm gives the pod a
dummy interface carrying the VF's MAC and PCI address (§3.6 step 1), without a VLAN as the
interface itself, with a VLAN as a dummy named from the DanmEp plus a VLAN link on top."""

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from danm import kube
from cnilib import Plugin, create_network, create_pod, danmeps, links_in, netns, unique
from delegatelib import CniBin, ip_json
from sriovlib import FakePod, FakePodResources, FakeSysfs, FakeVf

POOL = "intel.com/dpdk_pool"
DEVICE_RESULT: dict[str, Any] = {"interfaces": [{"name": "placeholder", "mac": "from-device"}], "ips": []}


@pytest.fixture(scope="module")
def client(kubeconfig: Path) -> Iterator[kube.ApiClient]:
    with kube.ApiClient(kube.load_config(str(kubeconfig))) as made:
        yield made


def test_dpdk_vfs_get_dummy_interfaces_with_and_without_vlan(
    client: kube.ApiClient, kubeconfig: Path, tmp_path: Path
) -> None:
    sysfs = FakeSysfs(tmp_path / "sys")
    sysfs.add_pf("ens2f0", "0000:05:00.0", [FakeVf("0000:05:10.0", "vfio-pci"), FakeVf("0000:05:10.1", "igb_uio")])
    create_network(client, "dpdk-flat", network_type="sriov", device_pool=POOL, cidr="10.130.0.0/24")
    create_network(client, "dpdk-vlan", network_type="sriov", device_pool=POOL, vlan=200, cidr="10.131.0.0/24")
    bins = CniBin(tmp_path / "bin", tmp_path / "record.jsonl")
    bins.fake("sriov", ["1.0.0"], DEVICE_RESULT)
    pod = unique("pd-")
    create_pod(client, pod, [{"network": "dpdk-flat", "ip": "dynamic"}, {"network": "dpdk-vlan", "ip": "dynamic"}])
    socket = tmp_path / "kubelet.sock"
    plugin = Plugin(
        kubeconfig, tmp_path, sysfsRoot=str(sysfs), podResourcesSocket=str(socket), interfaceDeadlineSeconds=240
    )
    with FakePodResources(socket, [FakePod("default", pod, [("app", {POOL: ["0000:05:10.0", "0000:05:10.1"]})])]):
        with netns() as path:
            added = plugin.run("ADD", container_id=pod, netns=path, pod=pod, env=bins.env())
            assert added.returncode == 0, added
            eps = {ep.spec.interface.name: ep for ep in danmeps(client) if ep.spec.pod == pod}
            links = {link["ifname"]: link for link in ip_json(path, "-d", "link", "show")}
            # without a VLAN: a dummy named as the interface
            flat = links["eth0"]
            assert flat["linkinfo"]["info_kind"] == "dummy"
            assert flat["address"] == "02:00:00:00:00:01" == eps["eth0"].spec.interface.mac_address
            assert flat["ifalias"] == "0000:05:10.0" and "UP" in flat["flags"]
            # with a VLAN: a dummy named from the DanmEp, and the VLAN link on top as the interface
            lower_name = eps["eth1"].metadata.name[:14]
            assert links[lower_name]["linkinfo"]["info_kind"] == "dummy"
            tagged = links["eth1"]
            assert tagged["linkinfo"]["info_kind"] == "vlan" and tagged["linkinfo"]["info_data"]["id"] == 200
            assert tagged["link"] == lower_name
            assert tagged["address"] == links[lower_name]["address"] == "02:00:00:00:00:02"
            assert tagged["ifalias"] == "0000:05:10.1"
            for name, ep in eps.items():
                addresses = [a["local"] for a in ip_json(path, "addr", "show", name)[0]["addr_info"] if a["family"] == "inet"]
                assert addresses == [ep.spec.interface.address.split("/")[0]]
            calls = {c["ifname"]: c["config"]["deviceID"] for c in bins.calls("sriov", "ADD")}
            assert calls == {"eth0": "0000:05:10.0", "eth1": "0000:05:10.1"}  # first listed first
            deleted = plugin.run("DEL", container_id=pod, netns=path, pod=pod, env=bins.env())
            assert deleted.returncode == 0, deleted
            # the sriov plugin cannot remove what danm made: DEL removes the dummies itself
            assert links_in(path) == {"lo"}
    assert not [ep for ep in danmeps(client) if ep.spec.pod == pod]
