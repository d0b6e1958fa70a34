"""The configurations danm gives delegated CNI plugins.

* Dynamic ("native") types are generated from the network: ``macvlan`` (master per the parent
  rule, bridge mode, the parent's MTU) and ``sriov`` (the VF's PF, vlan, deviceID; built by
  danm.sriov). Both always use danm's IPAM.
* Every other type reads ``<cniDir>/<NetworkID>.conf`` or ``.conflist`` as an opaque JSON
  object: plugin-specific keys survive untouched and integers stay integers; only ``ipam`` is
  replaced (danm allocated) or removed (``ip: none``); ``name`` and ``runtimeConfig`` are set as
  libcni sets them, and ``cniVersion`` is the highest version every plugin of the chain speaks.
* A conflist is a chain: ADD in order, each plugin getting the previous one's result as
  ``prevResult``; DEL in reverse.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any, Final

from danm.cni import ERR_DELEGATE, ERR_INVALID_CONFIG, ERR_LINK, CniFailure
from danm.delegate import check_name

if TYPE_CHECKING:
    from danm.types import InterfaceRequest, Network

MACVLAN: Final = "macvlan"
SRIOV: Final = "sriov"
DYNAMIC_TYPES: Final = (MACVLAN, SRIOV)
BUILTIN_TYPES: Final = ("", "ipvlan")
FLANNEL: Final = "flannel"

JsonObject = dict[str, Any]


class ConfigGone(CniFailure):
    """A static delegate's file is not there (DEL goes on without the delegate)."""


def backend(network_type: str) -> str:
    """"builtin", "dynamic" or "static" for a NetworkType (compared case-insensitively)."""
    lowered = network_type.lower()
    if lowered in BUILTIN_TYPES:
        return "builtin"
    if lowered in DYNAMIC_TYPES:
        return "dynamic"
    return "static"


def plugin_name(network_type: str) -> str:
    """The binary to exec: dynamic types by their canonical name, static ones as written."""
    lowered = network_type.lower()
    return lowered if lowered in DYNAMIC_TYPES else network_type


def danm_allocates(network: Network, request: InterfaceRequest) -> tuple[str, str]:
    """What danm's IPAM reserves for a delegated interface: (ip4 request, ip6 request).

    Dynamic types: whatever the pod asked. Static types: a family only when the pod asks for an
    address in it and the network has a subnet for it (§4.3, without §11.12's "none" quirk);
    otherwise the delegate's own IPAM (or none) is left in charge.
    """
    if backend(network.spec.network_type) == "dynamic":
        return request.ip, request.ip6
    options = network.spec.options
    ip4 = request.ip if request.ip not in ("", "none") and options.cidr else ""
    ip6 = request.ip6 if request.ip6 not in ("", "none") and options.net6 else ""
    return ip4, ip6


def strips_ipam(request: InterfaceRequest, ip4: str, ip6: str) -> bool:
    """``ip: none`` (or ``ip6: none``) without danm allocating anything: no IPAM at all."""
    return not ip4 and not ip6 and (request.ip == "none" or request.ip6 == "none")


# --------------------------------------------------------------------------------------------
# Dynamic


def parent_mtu(parent: str) -> int:
    """The host device's MTU (sysfs of the host namespace danm runs in); ParentMissing-like
    error naming the device when it does not exist."""
    check_name("parent device", parent)
    try:
        with open(f"/sys/class/net/{parent}/mtu", encoding="ascii") as source:
            return int(source.read().strip())
    except FileNotFoundError:
        raise CniFailure(ERR_LINK, f"host device {parent} does not exist") from None
    except (OSError, ValueError) as error:
        raise CniFailure(ERR_LINK, f"cannot read the MTU of host device {parent}: {error}") from None


def macvlan_config(name: str, cni_version: str, master: str, mtu: int, ipam: JsonObject | None) -> JsonObject:
    config: JsonObject = {
        "cniVersion": cni_version,
        "name": name,
        "type": MACVLAN,
        "master": master,
        "mode": "bridge",
        "mtu": mtu,
    }
    if ipam is not None:
        config["ipam"] = ipam
    return config


# --------------------------------------------------------------------------------------------
# Static


class StaticConfig:
    """A static delegate's file: a single plugin config, or a chain (conflist)."""

    def __init__(self, path: str, document: JsonObject) -> None:
        self.path = path
        self.document = document
        self.is_list = path.endswith(".conflist")

    def plugins(self) -> list[JsonObject]:
        if not self.is_list:
            return [self.document]
        plugins = self.document.get("plugins")
        if not isinstance(plugins, list) or not plugins or not all(isinstance(p, dict) for p in plugins):
            raise CniFailure(ERR_INVALID_CONFIG, f"{self.path}: a conflist needs a non-empty 'plugins' list of objects")
        return plugins

    @property
    def name(self) -> str:
        return str(self.document.get("name") or "")

    @property
    def cni_version(self) -> str:
        return str(self.document.get("cniVersion") or "")


def load_static(cni_dir: str, network_id: str) -> StaticConfig:
    """``<cniDir>/<NetworkID>.conf``, else ``.conflist`` (NetworkID checked first)."""
    import msgspec

    check_name("NetworkID", network_id)
    for suffix in (".conf", ".conflist"):
        path = os.path.join(cni_dir, network_id + suffix)
        try:
            with open(path, "rb") as source:
                raw = source.read()
        except FileNotFoundError:
            continue
        except OSError as error:
            raise CniFailure(ERR_DELEGATE, f"cannot read CNI config {path}: {error.strerror}") from None
        try:
            document = msgspec.json.decode(raw)
        except msgspec.DecodeError as error:
            raise CniFailure(ERR_INVALID_CONFIG, f"CNI config {path} is not JSON: {error}") from None
        if not isinstance(document, dict):
            raise CniFailure(ERR_INVALID_CONFIG, f"CNI config {path} is not a JSON object")
        return StaticConfig(path, document)
    raise ConfigGone(
        ERR_DELEGATE,
        f"no CNI config {network_id}.conf or {network_id}.conflist in {cni_dir} (the network's NetworkID names it)",
    )


def with_ipam(plugins: list[JsonObject], ipam: JsonObject | None, strip: bool) -> list[JsonObject]:
    """The chain with danm's IPAM: replacing every plugin's ``ipam`` (added to the first plugin
    when none has one), or removing them all (``strip``); unchanged otherwise. Copies."""
    result = [dict(plugin) for plugin in plugins]
    if strip:
        for plugin in result:
            plugin.pop("ipam", None)
    elif ipam is not None:
        holders = [plugin for plugin in result if "ipam" in plugin]
        for plugin in holders or result[:1]:
            plugin["ipam"] = ipam
    return result


def plugin_config(
    plugin: JsonObject,
    name: str,
    cni_version: str,
    runtime_config: JsonObject | None,
    prev_result: Any,
) -> JsonObject:
    """One plugin's stdin, as libcni builds it: name and cniVersion of the network, the
    runtime's capability arguments the plugin declares, the previous result in a chain."""
    config = dict(plugin)
    config["name"] = name
    config["cniVersion"] = cni_version
    capabilities = plugin.get("capabilities")
    if runtime_config and isinstance(capabilities, dict):
        chosen = {key: value for key, value in runtime_config.items() if capabilities.get(key) is True}
        if chosen:
            config["runtimeConfig"] = chosen
    if prev_result is not None:
        config["prevResult"] = prev_result
    else:
        config.pop("prevResult", None)
    return config
