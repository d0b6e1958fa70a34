"""The reference ipvlan and vlan CNI plugins as danm delegates, in a real kernel (the host
kernel has neither link type). Static configs name the plugin; danm's IPAM replaces theirs."""

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from danm import kube
from cnilib import Plugin, create_network, create_pod, danmeps, links_in, netns, network, unique
from delegatelib import CniBin, ip_json

PHYS = "kdphys"


@pytest.fixture(scope="module")
def parent() -> Iterator[str]:
    import subprocess

    subprocess.run(["ip", "link", "add", PHYS, "mtu", "9000", "type", "dummy"], check=True)
    subprocess.run(["ip", "link", "set", PHYS, "up"], check=True)
    yield PHYS
    subprocess.run(["ip", "link", "del", PHYS], check=False)


@pytest.fixture(scope="module")
def client(kubeconfig: Path) -> Iterator[kube.ApiClient]:
    with kube.ApiClient(kube.load_config(str(kubeconfig))) as made:
        yield made


def test_reference_ipvlan_and_vlan_plugins_as_static_delegates(
    client: kube.ApiClient, kubeconfig: Path, tmp_path: Path, parent: str
) -> None:
    cni_dir = tmp_path / "net.d"
    cni_dir.mkdir()
    host_local = {"type": "host-local", "subnet": "192.0.2.0/24", "dataDir": str(tmp_path / "hl")}
    (cni_dir / "kipv.conf").write_text(json.dumps(
        {"cniVersion": "0.3.1", "name": "kipv", "type": "ipvlan", "master": parent, "mode": "l2", "ipam": host_local}
    ))
    (cni_dir / "kvl.conf").write_text(json.dumps(
        {"cniVersion": "0.3.1", "name": "kvl", "type": "vlan", "master": parent, "vlanId": 123, "ipam": host_local}
    ))
    create_network(client, "kipv", network_type="ipvlan-ref", network_id="kipv", cidr="10.120.0.0/24")
    create_network(client, "kvl", network_type="vlan", network_id="kvl", cidr="10.121.0.0/24", net6="fd21::/64")
    bins = CniBin(tmp_path / "bin", tmp_path / "record.jsonl")
    # "ipvlan" means danm's built-in backend, so the reference plugin runs under another name
    bins.record("ipvlan-ref", real=Path("/usr/lib/cni/ipvlan"))
    bins.record("vlan")
    plugin = Plugin(kubeconfig, tmp_path, cniDir=str(cni_dir), interfaceDeadlineSeconds=240)
    pod = unique("pk-")
    create_pod(client, pod, [{"network": "kipv", "ip": "dynamic"}, {"network": "kvl", "ip": "10.121.0.9", "ip6": "dynamic"}])
    before = {name: network(client, name).spec.options.alloc for name in ("kipv", "kvl")}
    with netns() as path:
        added = plugin.run("ADD", container_id=pod, netns=path, pod=pod, env=bins.env())
        assert added.returncode == 0, added
        links = {link["ifname"]: link for link in ip_json(path, "-d", "link", "show")}
        assert links["eth0"]["linkinfo"]["info_kind"] == "ipvlan"
        assert links["eth1"]["linkinfo"]["info_kind"] == "vlan" and links["eth1"]["linkinfo"]["info_data"]["id"] == 123
        eth0 = [a["local"] for a in ip_json(path, "addr", "show", "eth0")[0]["addr_info"] if a["family"] == "inet"]
        eth1 = {a["local"] for a in ip_json(path, "addr", "show", "eth1")[0]["addr_info"] if a.get("scope") == "global"}
        assert eth0 and eth0[0].startswith("10.120.0.")  # danm's pool, not the file's host-local
        assert "10.121.0.9" in eth1 and any(address.startswith("fd21::") for address in eth1)
        assert {call["plugin"]: call["ifname"] for call in bins.calls(None, "ADD")} == {"ipvlan-ref": "eth0", "vlan": "eth1"}
        assert all(call["config"]["ipam"]["type"] in ("static", "fakeipam") for call in bins.calls(None, "ADD"))
        deleted = plugin.run("DEL", container_id=pod, netns=path, pod=pod, env=bins.env())
        assert deleted.returncode == 0, deleted
        assert links_in(path) == {"lo"}
    assert {name: network(client, name).spec.options.alloc for name in ("kipv", "kvl")} == before
    assert not [ep for ep in danmeps(client) if ep.spec.pod == pod]

