"""danm.sriov on a fake sysfs tree (tests/sriovlib.FakeSysfs), and NetlinkVfMacs on the host."""

from __future__ import annotations

import json
import os
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from sriovlib import FakeSysfs, FakeVf, FakeVfMacs

from danm.errors import DanmError
from danm.sriov import (
    DEFAULT_SYSFS_ROOT,
    USERSPACE_DRIVERS,
    NetlinkVfMacs,
    SriovError,
    VfMacProvider,
    driver,
    is_userspace,
    mac_of_vf,
    pf_name,
    sriov_config,
    vf_index,
    vf_mac,
    vf_table,
)

if TYPE_CHECKING:
    from pyroute2.netlink.rtnl.ifinfmsg import ifinfmsg

PF_A = "0000:03:00.0"
PF_B = "0000:04:00.0"
KERNEL_VF = "0000:03:02.0"
VFIO_VF = "0000:03:02.1"
UIO_VF = "0000:03:02.2"
IGB_UIO_VF = "0000:03:02.3"
UNBOUND_VF = "0000:03:02.4"
B_VF0 = "0000:04:02.0"
B_VF1 = "0000:04:02.1"
PLAIN = "0000:00:1f.6"

MACS_A = ["fa:16:3e:00:00:01", "fa:16:3e:00:00:02", "fa:16:3e:00:00:03", "fa:16:3e:00:00:04", ""]
MACS_B = ["12:34:56:00:00:01"]  # one entry for two VFs: VF 1 is past the table's end


@pytest.fixture
def sysfs(tmp_path: Path) -> FakeSysfs:
    tree = FakeSysfs(tmp_path / "sys")
    tree.add_pf(
        "ens1f0",
        PF_A,
        [
            FakeVf(KERNEL_VF, "ixgbevf"),
            FakeVf(VFIO_VF, "vfio-pci"),
            FakeVf(UIO_VF, "uio_pci_generic"),
            FakeVf(IGB_UIO_VF, "igb_uio"),
            FakeVf(UNBOUND_VF, ""),
        ],
    )
    tree.add_pf("ens2f0", PF_B, [FakeVf(B_VF0), FakeVf(B_VF1, "vfio-pci")])
    tree.add_plain_device(PLAIN)
    return tree


def test_tree_is_laid_out_like_sysfs(sysfs: FakeSysfs) -> None:
    """The VF's physfn and the PF's virtfnN are relative links, as the kernel makes them."""
    vf_dir = sysfs.root / "bus" / "pci" / "devices" / VFIO_VF
    assert os.readlink(vf_dir / "physfn") == f"../{PF_A}"
    assert os.readlink(vf_dir / "physfn" / "virtfn1") == f"../{VFIO_VF}"
    assert os.listdir(vf_dir / "physfn" / "net") == ["ens1f0"]
    assert os.path.realpath(vf_dir / "driver") == str(sysfs.root / "bus" / "pci" / "drivers" / "vfio-pci")


def test_pf_name(sysfs: FakeSysfs) -> None:
    root = str(sysfs)
    assert [pf_name(vf, root) for vf in (KERNEL_VF, IGB_UIO_VF, B_VF1)] == ["ens1f0", "ens1f0", "ens2f0"]


@pytest.mark.parametrize("device", [PLAIN, "0000:09:00.0"])
def test_pf_name_of_no_vf_names_the_device(sysfs: FakeSysfs, device: str) -> None:
    with pytest.raises(SriovError, match=f"failed to get the name of the SR-IOV PF of device {device}") as raised:
        pf_name(device, str(sysfs))
    assert isinstance(raised.value, DanmError)


def test_pf_without_netdev(sysfs: FakeSysfs) -> None:
    (sysfs.device_dir(PF_B) / "net" / "ens2f0").rmdir()
    with pytest.raises(SriovError, match=f"device {B_VF0}: .* is empty"):
        pf_name(B_VF0, str(sysfs))


@pytest.mark.parametrize("device", ["", ".", "..", "../../etc", "0000:03:02.0/.."])
def test_device_ids_that_are_no_pci_address(sysfs: FakeSysfs, device: str) -> None:
    with pytest.raises(SriovError, match="is not a PCI address"):
        pf_name(device, str(sysfs))
    with pytest.raises(SriovError, match="is not a PCI address"):
        vf_index(device, str(sysfs))
    assert driver(device, str(sysfs)) == ""
    assert is_userspace(device, str(sysfs)) is False


def test_vf_index(sysfs: FakeSysfs) -> None:
    root = str(sysfs)
    vfs = [KERNEL_VF, VFIO_VF, UIO_VF, IGB_UIO_VF, UNBOUND_VF]
    assert [vf_index(vf, root) for vf in vfs] == [0, 1, 2, 3, 4]
    assert [vf_index(vf, root) for vf in (B_VF0, B_VF1)] == [0, 1]


def test_vf_index_counts_past_nine(tmp_path: Path) -> None:
    """virtfn10 sorts before virtfn2 as text; the number is what counts."""
    tree = FakeSysfs(tmp_path / "sys")
    vfs = [FakeVf(f"0000:05:0{1 + number // 8}.{number % 8}") for number in range(12)]
    tree.add_pf("ens3f0", "0000:05:00.0", vfs)
    assert [vf_index(vf.pci, str(tree)) for vf in vfs] == list(range(12))


def test_vf_index_of_a_device_the_pf_does_not_list(sysfs: FakeSysfs) -> None:
    (sysfs.device_dir(PF_A) / "virtfn4").unlink()
    with pytest.raises(SriovError, match=f"device {UNBOUND_VF} is not among the virtfnN links"):
        vf_index(UNBOUND_VF, str(sysfs))
    with pytest.raises(SriovError, match=f"cannot list the PF of device {PLAIN}"):
        vf_index(PLAIN, str(sysfs))


def test_driver_and_userspace(sysfs: FakeSysfs) -> None:
    root = str(sysfs)
    assert USERSPACE_DRIVERS == ("vfio-pci", "uio_pci_generic", "igb_uio")
    expected = {
        KERNEL_VF: ("ixgbevf", False),
        VFIO_VF: ("vfio-pci", True),
        UIO_VF: ("uio_pci_generic", True),
        IGB_UIO_VF: ("igb_uio", True),
        UNBOUND_VF: ("", False),
        PLAIN: ("e1000e", False),
        "0000:09:00.0": ("", False),
    }
    assert {device: (driver(device, root), is_userspace(device, root)) for device in expected} == expected


def test_vf_mac_through_the_provider(sysfs: FakeSysfs) -> None:
    provider = FakeVfMacs({"ens1f0": MACS_A, "ens2f0": MACS_B})
    typed: VfMacProvider = provider  # structural: mypy checks FakeVfMacs against the protocol
    root = str(sysfs)
    assert [vf_mac(vf, root, typed) for vf in (KERNEL_VF, VFIO_VF, IGB_UIO_VF)] == MACS_A[:2] + MACS_A[3:4]
    assert vf_mac(UNBOUND_VF, root, typed) == ""  # the table has no MAC for it
    assert provider.asked == [("ens1f0", 0), ("ens1f0", 1), ("ens1f0", 3), ("ens1f0", 4)]


def test_vf_mac_index_equal_to_the_number_of_vfs_is_invalid(sysfs: FakeSysfs) -> None:
    """§11 item 25: the original's bounds check let VF len(table) through."""
    provider = FakeVfMacs({"ens2f0": MACS_B})
    assert vf_mac(B_VF0, str(sysfs), provider) == MACS_B[0]
    assert vf_mac(B_VF1, str(sysfs), provider) == ""
    assert provider.asked[-1] == ("ens2f0", 1)
    assert mac_of_vf(MACS_B, len(MACS_B)) == ""
    assert mac_of_vf(MACS_B, len(MACS_B) - 1) == MACS_B[-1]
    assert mac_of_vf(MACS_B, -1) == ""
    assert mac_of_vf([], 0) == ""


def test_vf_mac_without_sysfs_entries_asks_nobody(sysfs: FakeSysfs) -> None:
    provider = FakeVfMacs({"ens1f0": MACS_A})
    assert vf_mac(PLAIN, str(sysfs), provider) == ""
    assert vf_mac("0000:09:00.0", str(sysfs), provider) == ""
    assert provider.asked == []


def test_sriov_config_exact(sysfs: FakeSysfs) -> None:
    ipam: dict[str, object] = {
        "type": "fakeipam",
        "ips": [{"ipcidr": "10.10.0.5/24", "version": 4}, {"ipcidr": "fd00::5/64", "version": 6}],
    }
    config = sriov_config("sriov-a", "0.3.1", VFIO_VF, 300, str(sysfs), ipam)
    assert json.dumps(config) == json.dumps({
        "cniVersion": "0.3.1",
        "name": "sriov-a",
        "type": "sriov",
        "master": "ens1f0",
        "vlan": 300,
        "deviceID": VFIO_VF,
        "ipam": ipam,
    })  # key order included


def test_sriov_config_vlan_zero_kept_and_no_ipam(sysfs: FakeSysfs) -> None:
    assert sriov_config("sriov-b", "0.4.0", B_VF0, 0, str(sysfs), None) == {
        "cniVersion": "0.4.0", "name": "sriov-b", "type": "sriov", "master": "ens2f0", "vlan": 0,
        "deviceID": B_VF0,
    }


def test_sriov_config_errors_name_device_and_network(sysfs: FakeSysfs) -> None:
    with pytest.raises(SriovError, match=f"SR-IOV PF of device {PLAIN}"):
        sriov_config("sriov-a", "0.3.1", PLAIN, 0, str(sysfs), None)
    for vlan in (-1, 4095):
        with pytest.raises(SriovError, match=f"vlan {vlan} of network sriov-a is not a VLAN ID"):
            sriov_config("sriov-a", "0.3.1", VFIO_VF, vlan, str(sysfs), None)


def test_default_sysfs_root() -> None:
    assert DEFAULT_SYSFS_ROOT == "/sys"


def on_the_wire(message: ifinfmsg) -> ifinfmsg:
    """The message encoded as the kernel sends it and decoded as pyroute2 receives it
    (encode/decode/data are left out of our pyroute2 stubs: danm itself never calls them)."""
    from pyroute2.netlink.rtnl.ifinfmsg import ifinfmsg

    sent: Any = message
    sent.encode()
    received: Any = ifinfmsg(sent.data)
    received.decode()
    decoded: ifinfmsg = received
    return decoded


def test_vf_table_of_a_pf_link_message() -> None:
    """What the kernel sends for a PF with three VFs, decoded by pyroute2 as on a node."""
    from pyroute2.netlink.rtnl.ifinfmsg import ifinfmsg

    sent = ifinfmsg()
    sent.update(family=0, ifi_type=1, index=7, flags=0, change=0)
    sent["attrs"] = [
        ("IFLA_IFNAME", "ens1f0"),
        ("IFLA_VFINFO_LIST", {"attrs": [
            ("IFLA_VF_INFO", {"attrs": [("IFLA_VF_MAC", {"vf": number, "mac": mac})]})
            for number, mac in enumerate(MACS_A[:3])
        ]}),
    ]
    table = vf_table(on_the_wire(sent))
    assert table == MACS_A[:3]
    assert [mac_of_vf(table, vf) for vf in range(4)] == MACS_A[:3] + [""]

    no_vfs = ifinfmsg()
    no_vfs.update(family=0, ifi_type=1, index=8, flags=0, change=0)
    no_vfs["attrs"] = [("IFLA_IFNAME", "eth0")]
    assert vf_table(on_the_wire(no_vfs)) == []


@pytest.fixture
def veth() -> Iterator[str]:
    """A veth pair on the host (no VF table), removed afterwards."""
    name = f"dvf{uuid.uuid4().hex[:8]}"
    subprocess.run(["ip", "link", "add", name, "type", "veth", "peer", "name", name + "p"], check=True)
    try:
        yield name
    finally:
        subprocess.run(["ip", "link", "del", name], check=False)


def test_netlink_vf_macs_without_vfs(veth: str) -> None:
    macs = NetlinkVfMacs()
    assert macs.vf_mac(veth, 0) == ""
    assert macs.vf_mac(f"dvx{uuid.uuid4().hex[:8]}", 0) == ""  # no such link
