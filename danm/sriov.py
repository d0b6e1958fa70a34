"""SR-IOV virtual functions (VFs) as danm meets them: from the PCI address kubelet allocated,
the physical function (PF) and VF index from sysfs, the driver it is bound to, its MAC from the
PF's netlink VF table, and the config handed to the sriov CNI plugin (reference §2.7, §3.6
step 1, §4.4).

sysfs is read under a root passed in by the caller (``/sys`` on a node) so that tests can use a
fake tree; the VF MAC comes through a `VfMacProvider` for the same reason. pyroute2 is imported
only inside `NetlinkVfMacs`.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Final, Protocol

from danm.errors import DanmError

if TYPE_CHECKING:
    from pyroute2.netlink import nlmsg_base

DEFAULT_SYSFS_ROOT: Final = "/sys"
USERSPACE_DRIVERS: Final = ("vfio-pci", "uio_pci_generic", "igb_uio")
"""Drivers that hand the VF to a userspace (DPDK) process: the kernel has no netdev for it, so
danm puts a dummy interface in its place (§3.6 step 1)."""
VIRTFN_PREFIX: Final = "virtfn"
RTEXT_FILTER_VF: Final = 1
MAX_VLAN: Final = 4094


class SriovError(DanmError):
    """A VF's sysfs entries are missing or unusable; the message names the device."""


def _device_dir(device_id: str, sysfs_root: str) -> str:
    """sysfs directory of a PCI device; refuses IDs that would leave bus/pci/devices."""
    if not device_id or "/" in device_id or device_id in (".", ".."):
        raise SriovError(f"device ID {device_id!r} is not a PCI address")
    return os.path.join(sysfs_root, "bus", "pci", "devices", device_id)


def pf_name(device_id: str, sysfs_root: str) -> str:
    """The netdev name of the VF's PF: the entry of ``<device>/physfn/net/``."""
    net_dir = os.path.join(_device_dir(device_id, sysfs_root), "physfn", "net")
    try:
        names = sorted(os.listdir(net_dir))
    except OSError as err:
        raise SriovError(
            f"failed to get the name of the SR-IOV PF of device {device_id}: {net_dir}: "
            f"{err.strerror or err}"
        ) from err
    if not names:
        raise SriovError(
            f"failed to get the name of the SR-IOV PF of device {device_id}: {net_dir} is empty "
            "(the PF has no kernel netdev)"
        )
    return names[0]


def vf_index(device_id: str, sysfs_root: str) -> int:
    """The VF number of the device on its PF: N of the PF's ``virtfnN`` link that points to it."""
    pf_dir = os.path.join(_device_dir(device_id, sysfs_root), "physfn")
    try:
        entries = os.listdir(pf_dir)
    except OSError as err:
        raise SriovError(
            f"cannot list the PF of device {device_id} ({pf_dir}): {err.strerror or err}"
        ) from err
    for entry in entries:
        number = entry[len(VIRTFN_PREFIX):]
        if not entry.startswith(VIRTFN_PREFIX) or not number.isdigit():
            continue
        try:
            target = os.readlink(os.path.join(pf_dir, entry))
        except OSError:
            continue  # not a link: not a VF entry
        if os.path.basename(target.rstrip("/")) == device_id:
            return int(number)
    raise SriovError(f"device {device_id} is not among the virtfnN links of its PF ({pf_dir})")


def driver(device_id: str, sysfs_root: str) -> str:
    """The name of the driver the device is bound to; "" when unbound or unknown."""
    try:
        link = os.path.join(_device_dir(device_id, sysfs_root), "driver")
        return os.path.basename(os.readlink(link).rstrip("/"))
    except (OSError, SriovError):
        return ""


def is_userspace(device_id: str, sysfs_root: str) -> bool:
    """Whether the device is bound to a userspace (DPDK) driver; lookup errors mean no."""
    return driver(device_id, sysfs_root) in USERSPACE_DRIVERS


class VfMacProvider(Protocol):
    def vf_mac(self, pf: str, vf: int) -> str:
        """The MAC of VF ``vf`` of PF ``pf``; "" when it cannot be had."""
        ...


def mac_of_vf(table: list[str], vf: int) -> str:
    """Entry ``vf`` of a PF's VF MAC table (VF 0 first); "" when there is no such VF. The
    original accepted vf == len(table) (§11 item 25): VFs are numbered 0..len-1."""
    if vf < 0 or vf >= len(table):
        return ""
    return table[vf]


class NetlinkVfMacs:
    """VF MACs from the PF's netlink VF table (IFLA_VFINFO_LIST), in the calling thread's
    namespace, which is where PFs live: the host's."""

    def vf_mac(self, pf: str, vf: int) -> str:
        from pyroute2 import IPRoute, NetlinkError

        try:
            with IPRoute() as ipr:
                found = ipr.link_lookup(ifname=pf)
                if not found:
                    return ""
                links = ipr.link("get", index=found[0], ext_mask=RTEXT_FILTER_VF)
        except (NetlinkError, OSError):
            return ""
        if not links:
            return ""
        return mac_of_vf(vf_table(links[0]), vf)


def vf_table(link: nlmsg_base) -> list[str]:
    """The VF MACs of a PF link message (its IFLA_VFINFO_LIST), VF 0 first; [] without VFs."""
    from pyroute2.netlink import nlmsg_base

    table = link.get_attr("IFLA_VFINFO_LIST")
    if not isinstance(table, nlmsg_base):
        return []
    macs: list[str] = []
    for entry in table.get_attrs("IFLA_VF_INFO"):
        mac: object = None
        if isinstance(entry, nlmsg_base):
            mac_attr = entry.get_attr("IFLA_VF_MAC")
            if isinstance(mac_attr, nlmsg_base):
                mac = mac_attr["mac"]
        macs.append(mac if isinstance(mac, str) else "")
    return macs


def vf_mac(device_id: str, sysfs_root: str, provider: VfMacProvider) -> str:
    """The MAC of the VF, for DanmEp.Interface.MacAddress; "" when it cannot be had (§2.7:
    stored only when obtainable)."""
    try:
        pf = pf_name(device_id, sysfs_root)
        index = vf_index(device_id, sysfs_root)
    except SriovError:
        return ""
    return provider.vf_mac(pf, index)


def sriov_config(
    name: str, cni_version: str, device_id: str, vlan: int, sysfs_root: str,
    ipam: dict[str, object] | None,
) -> dict[str, object]:
    """The config of the sriov CNI plugin for one VF (§4.4), keys in the original's order.

    ``vlan`` is always present, 0 included: the original always sent it, and 0 makes sriov-cni
    clear a VLAN a previous user of the VF left on it. ``ipam`` (danm's fakeipam section) is
    left out when None."""
    if vlan < 0 or vlan > MAX_VLAN:
        raise SriovError(f"vlan {vlan} of network {name} is not a VLAN ID (0..{MAX_VLAN})")
    config: dict[str, object] = {
        "cniVersion": cni_version,
        "name": name,
        "type": "sriov",
        "master": pf_name(device_id, sysfs_root),
        "vlan": vlan,
        "deviceID": device_id,
    }
    if ipam is not None:
        config["ipam"] = ipam
    return config
