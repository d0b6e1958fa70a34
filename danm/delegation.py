"""One delegated interface: its plugin chain built, run for ADD or DEL, its result read back.

``Delegation`` is what ADD ran (the plugins, their configs and version), kept so that a rollback
or a DEL runs the very same chain in reverse. DEL rebuilds it from the DanmEp and the network
with the same rules; a static file that vanished or a device that is gone does not block
freeing danm's addresses and deleting the DanmEp (the caller goes on).
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any, Final

import msgspec

from danm import delegate, delegconf, ipamhandover
from danm.cni import ERR_DELEGATE, CniFailure
from danm.cniresult import Result

if TYPE_CHECKING:
    from collections.abc import Mapping

    from danm.types import DanmNetConf, Network

FLANNEL_DATA_DIR: Final = "/var/lib/cni/networks"
_JSON: Final = msgspec.json.Encoder()


class Context:
    """What every delegate run of one invocation shares."""

    def __init__(
        self,
        conf: DanmNetConf,
        environ: Mapping[str, str],
        netns: str,
        runtime_config: dict[str, Any] | None,
    ) -> None:
        self.conf = conf
        self.environ = environ
        self.netns = netns
        self.runtime_config = runtime_config
        self.cni_path = environ.get("CNI_PATH", "")
        # GC releases other containers' interfaces: their ID, not the (absent) runtime one
        self.container_id = environ.get("CNI_CONTAINERID", "")

    @property
    def versions_dir(self) -> str:
        return os.path.join(self.conf.run_dir, "plugin-versions")


def context_for(conf: DanmNetConf, environ: Mapping[str, str], netns: str) -> Context:
    """The context of an invocation; the runtime's capability arguments decoded for forwarding."""
    runtime_config = conf.runtime_config
    decoded: dict[str, Any] | None = None
    if isinstance(runtime_config, dict):
        decoded = {key: msgspec.json.decode(value) for key, value in runtime_config.items()}
    return Context(conf, environ, netns, decoded)


class DeviceGone(CniFailure):
    """The SR-IOV device (or its PF) is no longer there (DEL goes on without the delegate)."""


class Step:
    """One plugin of the chain: its binary and the config it was (or will be) given."""

    def __init__(self, plugin: str, binary: str, config: dict[str, Any]) -> None:
        self.plugin = plugin
        self.binary = binary
        self.config = config


class Delegation:
    def __init__(self, name: str, version: str, steps: list[Step]) -> None:
        self.name = name
        self.version = version
        self.steps = steps


def ipam_for(context: Context, ip4: str, ip6: str) -> dict[str, Any] | None:
    """The IPAM section carrying danm's addresses, None when there is no real address."""
    if "/" not in ip4 and "/" not in ip6:
        return None
    plugin = ipamhandover.choose_plugin(context.conf.ipam_plugin, context.cni_path)
    return ipamhandover.ipam_section(ip4, ip6, plugin)


def build(
    context: Context,
    network: Network,
    ip4: str,
    ip6: str,
    strip_ipam: bool,
    device_id: str,
    deadline: float,
) -> Delegation:
    """The chain for a network (dynamic or static), at the highest version all its plugins speak."""
    spec = network.spec
    name = spec.network_id or network.metadata.name
    ipam = ipam_for(context, ip4, ip6)
    # the IPAM plugin must speak the chain's version too (fakeipam speaks them all)
    ipam_binaries = []
    if ipam is not None and ipam.get("type") == ipamhandover.STATIC:
        ipam_binaries.append(delegate.find_binary(ipamhandover.STATIC, context.cni_path))
    lowered = spec.network_type.lower()
    if lowered == delegconf.MACVLAN:
        from danm import netlink

        options = spec.options
        master = netlink.parent_device(options.host_device, spec.network_id, options.vlan, options.vxlan)
        binary = delegate.find_binary(delegconf.MACVLAN, context.cni_path)
        version = _version(context, [binary, *ipam_binaries], deadline)
        config = delegconf.macvlan_config(name, version, master, delegconf.parent_mtu(master), ipam)
        return Delegation(name, version, [Step(delegconf.MACVLAN, binary, config)])
    if lowered == delegconf.SRIOV:
        from danm import sriov

        binary = delegate.find_binary(delegconf.SRIOV, context.cni_path)
        version = _version(context, [binary, *ipam_binaries], deadline)
        try:
            config = sriov.sriov_config(name, version, device_id, spec.options.vlan, context.conf.sysfs_root, ipam)
        except sriov.SriovError as error:
            raise DeviceGone(ERR_DELEGATE, str(error)) from None
        return Delegation(name, version, [Step(delegconf.SRIOV, binary, config)])
    static = delegconf.load_static(context.conf.cni_dir, spec.network_id)
    plugins = delegconf.with_ipam(static.plugins(), ipam, strip_ipam)
    if static.is_list:
        types = [str(plugin.get("type") or "") for plugin in plugins]
    else:
        types = [delegconf.plugin_name(spec.network_type)]  # a .conf runs the NetworkType binary
    binaries = [delegate.find_binary(plugin_type, context.cni_path) for plugin_type in types]
    version = _version(context, [*binaries, *ipam_binaries], deadline)
    chain_name = static.name or name
    steps = [Step(plugin_type, binary, plugin) for plugin_type, binary, plugin in zip(types, binaries, plugins)]
    return Delegation(chain_name, version, steps)


def _version(context: Context, binaries: list[str], deadline: float) -> str:
    """The highest version every plugin of the chain supports."""
    env = delegate.delegate_environment(context.environ, "VERSION", "")
    common: list[str] | None = None
    for binary in binaries:
        supported = delegate.supported_versions(binary, env, context.versions_dir, deadline)
        common = supported if common is None else [version for version in common if version in supported]
    version = delegate.best_version(common or [])
    if not version:
        names = ", ".join(os.path.basename(binary) for binary in binaries)
        raise CniFailure(ERR_DELEGATE, f"CNI plugin(s) {names} share no CNI version with danm")
    return version


def _stdin(delegation: Delegation, step: Step, context: Context, prev_result: Any) -> bytes:
    config = delegconf.plugin_config(step.config, delegation.name, delegation.version, context.runtime_config, prev_result)
    return _JSON.encode(config)


def add(context: Context, delegation: Delegation, ifname: str, where: str, deadline: float) -> Result:
    """Run the chain's ADDs in order; returns the last plugin's result."""
    env = delegate.delegate_environment(context.environ, "ADD", ifname, {"CNI_NETNS": context.netns})
    prev_result: Any = None
    result: Result | None = None
    for step in delegation.steps:
        run = delegate.execute(step.binary, _stdin(delegation, step, context, prev_result), env, deadline)
        if run.returncode != 0:
            raise delegate.failure_of(run, step.plugin, where)
        result = delegate.parse_result(run, step.plugin, where)
        prev_result = msgspec.json.decode(run.stdout)
    assert result is not None  # a chain has at least one plugin
    return result


def delete(context: Context, delegation: Delegation, ifname: str, where: str, deadline: float) -> list[str]:
    """Run the chain's DELs in reverse; every plugin is asked even if one fails. Returns the
    failures (the caller decides whether they block)."""
    env = delegate.delegate_environment(
        context.environ, "DEL", ifname, {"CNI_NETNS": context.netns, "CNI_CONTAINERID": context.container_id}
    )
    problems = []
    for step in reversed(delegation.steps):
        try:
            run = delegate.execute(step.binary, _stdin(delegation, step, context, None), env, deadline)
        except CniFailure as failure:
            problems.append(failure.msg)
            continue
        if run.returncode != 0:
            problems.append(delegate.failure_of(run, step.plugin, where).msg)
    return problems


def flannel_cleanup(environ: Mapping[str, str], addresses: list[str]) -> None:
    """§4.7: host-local files of flannel's bridge, named by the bare address (the original used
    the CIDR form, which never matched a file, §11.13)."""
    bridge = environ.get("FLANNEL_BRIDGE") or "cbr0"
    delegate.check_name("FLANNEL_BRIDGE", bridge)
    for address in addresses:
        bare = address.split("/", 1)[0]
        if not bare or bare == "none":
            continue
        try:
            os.unlink(os.path.join(FLANNEL_DATA_DIR, bridge, bare))
        except FileNotFoundError:
            pass


def mac_of(result: Result, ifname: str) -> str:
    """The MAC the result reports for the pod's interface ``ifname`` ("" when it reports none)."""
    for interface in result.interfaces:
        if interface.name == ifname and interface.mac:
            return interface.mac
    return ""
