"""CNI ADD: every interface a pod asks for, built concurrently, all or nothing.

1. Read the pod; decode its ``danm.io/interfaces`` annotation (or take the default network);
   resolve every network and check everything that can be checked before anything exists:
   AllowedTenants, interface names, backends, parents, policy-routing tables, the netns.
2. Remove the pod UID's stale DanmEps (a kubelet re-running ADD without DEL, §2.16).
3. One worker thread per interface, each bounded by the interface deadline: reserve the
   addresses, record the DanmEp, create and configure the link.
4. When any worker failed, roll back everything every worker created (links, DanmEps, reserved
   addresses), but only once all workers have stopped, so that a late one cannot create
   something after the cleanup. The error has one line per failed network, and a Warning Event
   goes to the pod.
5. Otherwise merge the results (eth0 first, indices renumbered, sandbox = the netns path), write
   the pod's network-status annotation and answer in the config's CNI version.
"""

from __future__ import annotations

import os
import threading
import time
from typing import TYPE_CHECKING, Final

from danm import annotation, cniresult, delegate, delegation, delegconf, endpoints, kube, netlink
from danm.cni import (
    ERR_INTERNAL,
    ERR_INVALID_CONFIG,
    ERR_LINK,
    ERR_NETWORK_NOT_FOUND,
    ERR_TENANT_NOT_ALLOWED,
    ERR_TRY_AGAIN,
    CniFailure,
    failure_from,
)
from danm.types import (
    KIND_CLUSTERNETWORK,
    KIND_DANMNET,
    KIND_TENANTNETWORK,
    DanmEp,
    InterfaceRequest,
    Network,
    Pod,
    PodSpec,
)

if TYPE_CHECKING:
    from danm.invocation import Invocation

LEGACY_ANNOTATION_KEY: Final = "danm.k8s.io/interfaces"
DEFAULT_NETWORK: Final = "default"
FIRST_INTERFACE: Final = "eth0"
DEFAULT_PREFIX: Final = "eth"
LEGACY_NAMING: Final = "legacy"
IFNAMSIZ: Final = 15
# How long a rollback may take, on top of the interface deadline that may have expired.
ROLLBACK_SECONDS: Final = 30.0
NETWORK_STATUS_SECONDS: Final = 10.0


class Attachment:
    """One requested interface: what it needs, and what its worker created (for rollback)."""

    def __init__(self, index: int, request: InterfaceRequest, network: Network, ifname: str, parent: str) -> None:
        self.index = index  # annotation entry; -1 for the default network
        self.request = request
        self.network = network
        self.ifname = ifname
        self.parent = parent
        self.ip4 = ""
        self.ip6 = ""
        self.reserved = False
        self.endpoint: DanmEp | None = None
        self.link: netlink.LinkInfo | None = None
        self.result: cniresult.Result | None = None
        self.error: CniFailure | None = None
        self.finished = False
        self.backend = delegconf.backend(network.spec.network_type)
        self.device_id = ""  # SR-IOV: the VF taken from the network's device pool
        self.delegation: delegation.Delegation | None = None
        self.delegate_ran = False  # a delegate ADD started: the rollback runs its DEL
        self.dummy_created = False  # a DPDK stand-in exists (the rollback removes it too)

    @property
    def kind(self) -> str:
        return self.network.kind or KIND_DANMNET

    @property
    def network_namespace(self) -> str:
        return "" if self.kind == KIND_CLUSTERNETWORK else self.network.metadata.namespace

    def describe(self) -> str:
        where = f"{self.network_namespace}/" if self.network_namespace else ""
        entry = "the default network" if self.index < 0 else f"annotation entry {self.index}"
        return f"{self.kind} {where}{self.network.metadata.name} ({entry}, interface {self.ifname})"


# --------------------------------------------------------------------------------------------
# Pure planning


def interface_name(sequence: int, container_prefix: str, naming_scheme: str) -> str:
    """§2.9: the first interface is always eth0 (kubelet reads it); then the network's
    container_prefix plus the sequence (or the bare prefix under the legacy scheme), else eth<n>."""
    if sequence == 0:
        return FIRST_INTERFACE
    if container_prefix:
        return container_prefix if naming_scheme == LEGACY_NAMING else f"{container_prefix}{sequence}"
    return f"{DEFAULT_PREFIX}{sequence}"


def interface_name_error(name: str) -> str | None:
    if not name:
        return "is empty"
    if len(name) > IFNAMSIZ:
        return f"is {len(name)} characters long; Linux allows {IFNAMSIZ}"
    if name in (".", "..") or any(char in name for char in "/: \t\n"):
        return "contains a character Linux refuses in interface names"
    return None


def requested_network(request: InterfaceRequest, namespace: str) -> tuple[str, str, str]:
    """(kind, namespace, name) an annotation entry refers to (the parser ensured exactly one)."""
    if request.tenant_network:
        return KIND_TENANTNETWORK, namespace, request.tenant_network
    if request.cluster_network:
        return KIND_CLUSTERNETWORK, "", request.cluster_network
    return KIND_DANMNET, namespace, request.network


def annotation_value(pod: Pod) -> str | None:
    """The interfaces annotation: the exact key (the original matched any key containing it,
    §11.19), else the pre-2022 ``danm.k8s.io`` key."""
    annotations = pod.metadata.annotations or {}
    if annotation.ANNOTATION_KEY in annotations:
        return annotations[annotation.ANNOTATION_KEY]
    return annotations.get(LEGACY_ANNOTATION_KEY)


def check_attachment(attachment: Attachment, pod_namespace: str) -> None:
    """Everything about one interface that can be refused before anything is created."""
    network = attachment.network
    spec = network.spec
    where = attachment.describe()
    if spec.allowed_tenants and pod_namespace not in spec.allowed_tenants:
        raise CniFailure(
            ERR_TENANT_NOT_ALLOWED,
            f"{where}: namespace {pod_namespace} is not in the network's AllowedTenants",
            "AllowedTenants: " + ", ".join(spec.allowed_tenants),
        )
    problem = interface_name_error(attachment.ifname)
    if problem is not None:
        raise CniFailure(
            ERR_INVALID_CONFIG,
            f"{where}: interface name {attachment.ifname!r} {problem}",
            "the name comes from the network's Options.container_prefix",
        )
    if attachment.backend != "builtin":
        try:
            delegate.check_name("NetworkType", delegconf.plugin_name(spec.network_type))
            if attachment.backend == "static":
                delegate.check_name("NetworkID", spec.network_id)
        except CniFailure as unsafe:
            raise CniFailure(unsafe.code, f"{where}: {unsafe.msg}") from None
    lowered = spec.network_type.lower()
    if lowered == delegconf.SRIOV and not spec.options.device_pool:
        raise CniFailure(ERR_INVALID_CONFIG, f"{where}: an sriov network needs Options.device_pool")
    if (attachment.backend == "builtin" or lowered == delegconf.MACVLAN) and not attachment.parent:
        raise CniFailure(
            ERR_INVALID_CONFIG,
            f"{where}: the network names no parent device (Options.host_device, vlan or vxlan)",
        )
    options = spec.options
    for field, routes in (("proutes", attachment.request.proutes), ("proutes6", attachment.request.proutes6)):
        if routes and options.rt_tables == 0:
            raise CniFailure(
                ERR_INVALID_CONFIG,
                f"{where}: {field} needs policy routing, but the network has no Options.rt_tables",
            )


def check_names(attachments: list[Attachment]) -> None:
    seen: dict[str, Attachment] = {}
    for attachment in attachments:
        earlier = seen.get(attachment.ifname)
        if earlier is not None:
            raise CniFailure(
                ERR_INVALID_CONFIG,
                f"{attachment.describe()}: interface name {attachment.ifname} is also given to "
                f"{earlier.describe()}",
            )
        seen[attachment.ifname] = attachment


def interface_result(attachment: Attachment, sandbox: str) -> cniresult.Result:
    """The CNI result of one built-in interface: the link, its addresses and main-table routes."""
    link = attachment.link
    result = cniresult.Result()
    result.interfaces.append(
        cniresult.Interface(
            name=attachment.ifname,
            mac=link.mac if link is not None else "",
            sandbox=sandbox,
            mtu=link.mtu if link is not None else 0,
        )
    )
    options = attachment.network.spec.options
    for address, routes in ((attachment.ip4, options.routes), (attachment.ip6, options.routes6)):
        if "/" not in address:
            continue
        result.ips.append(cniresult.IpConfig(address=address, interface=0))
        for destination, gateway in sorted((routes or {}).items()):
            result.routes.append(cniresult.Route(dst=destination, gw=gateway))
    return result


def pod_link(attachment: Attachment, temp_name: str) -> netlink.PodLink:
    options = attachment.network.spec.options
    real4 = attachment.ip4 if "/" in attachment.ip4 else ""
    real6 = attachment.ip6 if "/" in attachment.ip6 else ""
    table = options.rt_tables
    return netlink.PodLink(
        attachment.ifname,
        temp_name,
        ip4=real4,
        ip6=real6,
        ipv6_enabled=real6 != "",
        routes=options.routes if real4 else None,
        routes6=options.routes6 if real6 else None,
        table=table,
        proutes=attachment.request.proutes if table and real4 else None,
        proutes6=attachment.request.proutes6 if table and real6 else None,
    )


def aggregate(failed: list[Attachment]) -> CniFailure:
    """One line per failed network; the code is the first failure's (annotation order)."""
    ordered = sorted(failed, key=lambda attachment: attachment.index)
    lines = []
    for attachment in ordered:
        error = attachment.error
        assert error is not None
        lines.append(f"{attachment.describe()}: {error.msg}")
    first = ordered[0].error
    assert first is not None
    return CniFailure(first.code, "\n".join(lines), first.details)


# --------------------------------------------------------------------------------------------
# The I/O shell


def add(invocation: Invocation) -> bytes:
    args = invocation.pod_args(require_pod=True)
    log = invocation.log
    log.set_context(pod=f"{args.namespace}/{args.name}")
    client = invocation.client()
    deadline = invocation.deadline()
    try:
        pod = client.get(kube.PODS, args.namespace, args.name, Pod, deadline=deadline)
    except kube.NotFound:
        raise CniFailure(ERR_INTERNAL, f"pod {args.namespace}/{args.name} does not exist") from None
    if args.uid and pod.metadata.uid and args.uid != pod.metadata.uid:
        raise CniFailure(
            ERR_INTERNAL,
            f"pod {args.namespace}/{args.name} has UID {pod.metadata.uid}, not K8S_POD_UID {args.uid}",
        )
    node = (pod.spec.node_name if isinstance(pod.spec, PodSpec) else "") or invocation.node_name()
    try:
        return attach_all(invocation, client, pod, node, deadline)
    except Exception as error:
        failure = failure_from(error)
        from danm import events

        events.warn_pod(client, pod, "DanmNetworkSetupFailed", failure.msg, node, log)
        raise failure from None


def attach_all(invocation: Invocation, client: kube.ApiClient, pod: Pod, node: str, deadline: float) -> bytes:
    log = invocation.log
    netns_path = invocation.env.netns
    attachments = plan(invocation, client, pod, deadline)
    if not os.path.exists(netns_path):
        raise CniFailure(ERR_LINK, f"network namespace {netns_path} does not exist")
    remove_stale(invocation, client, pod, deadline)
    if any(attachment.request.ip6 not in ("", "none") for attachment in attachments):
        netlink.enable_ipv6(netns_path)
    run_workers(invocation, client, pod, node, attachments)
    failed = [attachment for attachment in attachments if attachment.error is not None]
    if failed:
        rollback(invocation, client, attachments)
        for attachment in failed:
            error = attachment.error
            assert error is not None
            log.error("interface.failed", error.msg, network=attachment.network.metadata.name, interface=attachment.ifname, code=error.code)
        raise aggregate(failed)
    results = [(a.ifname, a.result) for a in attachments if a.result is not None]
    merged = cniresult.merge(results, netns_path)
    write_network_status(invocation, client, pod, attachments)
    record_attachment(invocation, attachments)
    for attachment in attachments:
        log.info(
            "interface.added",
            network=attachment.network.metadata.name,
            interface=attachment.ifname,
            ip4=attachment.ip4,
            ip6=attachment.ip6,
        )
    return cniresult.render(merged, invocation.version)


def plan(invocation: Invocation, client: kube.ApiClient, pod: Pod, deadline: float) -> list[Attachment]:
    """Resolve and check every requested interface; nothing is created here."""
    namespace = pod.metadata.namespace
    naming = invocation.conf.naming_scheme
    value = annotation_value(pod)
    requests = annotation.parse_interfaces(value) if value is not None else []
    attachments: list[Attachment] = []
    if not requests:
        network = default_network(client, namespace, deadline)
        request = InterfaceRequest(network=DEFAULT_NETWORK, ip="dynamic")
        attachments.append(Attachment(-1, request, network, FIRST_INTERFACE, parent_of(network)))
    for index, request in enumerate(requests):
        kind, network_namespace, name = requested_network(request, namespace)
        found = endpoints.get_network(client, kind, network_namespace, name, deadline)
        if found is None:
            where = f"{network_namespace}/" if network_namespace else ""
            raise CniFailure(
                ERR_NETWORK_NOT_FOUND,
                f"{annotation.ANNOTATION_KEY} entry {index}: {kind} {where}{name} does not exist",
            )
        ifname = interface_name(index, found.spec.options.container_prefix, naming)
        attachments.append(Attachment(index, request, found, ifname, parent_of(found)))
    for attachment in attachments:
        check_attachment(attachment, namespace)
    check_names(attachments)
    assign_devices(invocation, pod, attachments)
    return attachments


def assign_devices(invocation: Invocation, pod: Pod, attachments: list[Attachment]) -> None:
    """SR-IOV: one device of the network's pool per interface, in annotation order, from the
    devices kubelet allocated to the pod (asked once per ADD). grpc is loaded only here."""
    needing = [a for a in attachments if a.network.spec.network_type.lower() == delegconf.SRIOV]
    if not needing:
        return
    from danm import podresources

    conf = invocation.conf
    try:
        devices = podresources.pod_devices(
            pod.metadata.namespace, pod.metadata.name, conf.kubelet_socket, max(1.0, invocation.deadline() - time.monotonic())
        )
    except podresources.PodResourcesError as error:
        raise CniFailure(ERR_INVALID_CONFIG, f"{needing[0].describe()}: {error}") from None
    pools = podresources.DevicePools(devices)
    for attachment in needing:
        try:
            attachment.device_id = pools.take(attachment.network.spec.options.device_pool)
        except podresources.PodResourcesError as error:
            raise CniFailure(ERR_INVALID_CONFIG, f"{attachment.describe()}: {error}") from None


def parent_of(network: Network) -> str:
    options = network.spec.options
    return netlink.parent_device(options.host_device, network.spec.network_id, options.vlan, options.vxlan)


def default_network(client: kube.ApiClient, namespace: str, deadline: float) -> Network:
    """§2.5: DanmNet ``default``, then TenantNetwork ``default`` in the pod's namespace, then
    ClusterNetwork ``default``. The kind is always recorded (§11.21)."""
    for kind, network_namespace in (
        (KIND_DANMNET, namespace),
        (KIND_TENANTNETWORK, namespace),
        (KIND_CLUSTERNETWORK, ""),
    ):
        network = endpoints.get_network(client, kind, network_namespace, DEFAULT_NETWORK, deadline)
        if network is not None:
            return network
    raise CniFailure(
        ERR_NETWORK_NOT_FOUND,
        f"the pod has no {annotation.ANNOTATION_KEY} annotation entries and there is no default network "
        f"(DanmNet or TenantNetwork {namespace}/{DEFAULT_NETWORK}, or ClusterNetwork {DEFAULT_NETWORK})",
    )


def remove_stale(invocation: Invocation, client: kube.ApiClient, pod: Pod, deadline: float) -> None:
    """Release DanmEps of this pod UID left by an ADD that never saw its DEL (§2.16): their
    delegate state, links, DanmEps and addresses. Errors are logged, never fatal to this ADD."""
    from danm import detach

    uid = pod.metadata.uid
    if not uid:
        return
    try:
        found, _ = client.list(kube.DANMEPS, pod.metadata.namespace, DanmEp, deadline=deadline)
    except kube.KubeError as error:
        invocation.log.warning("endpoint.stale-lookup-failed", str(error))
        return
    for endpoint in found:
        spec = endpoint.spec
        if endpoints.text(spec.pod_uid) != uid or spec.pod != pod.metadata.name:
            continue
        try:
            detach.release_endpoint(invocation, client, endpoint, deadline)
        except Exception as error:
            invocation.log.warning("endpoint.stale-release-failed", str(error), endpoint=endpoint.metadata.name)
            continue
        invocation.log.warning(
            "endpoint.stale",
            "released a DanmEp of this pod left by an earlier sandbox",
            endpoint=endpoint.metadata.name,
            stale_container=endpoints.text(spec.container_id),
        )


def run_workers(invocation: Invocation, client: kube.ApiClient, pod: Pod, node: str, attachments: list[Attachment]) -> None:
    """One thread per interface; returns when every worker has stopped. Workers still running at
    the deadline are told to stop and are waited for (every step they take is itself bounded by
    the deadline), and they count as failed."""
    deadline = time.monotonic() + invocation.conf.interface_deadline
    stop = threading.Event()
    threads = [
        threading.Thread(
            target=build_interface,
            args=(invocation, client, pod, node, attachment, deadline, stop),
            name=f"danm-{attachment.ifname}",
            daemon=True,
        )
        for attachment in attachments
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
    if any(thread.is_alive() for thread in threads):
        stop.set()
        for thread in threads:
            thread.join()
    for attachment in attachments:
        if not attachment.finished and attachment.error is None:
            attachment.error = CniFailure(
                ERR_TRY_AGAIN,
                f"not finished within interfaceDeadlineSeconds ({invocation.conf.interface_deadline:g} s)",
            )


def build_interface(
    invocation: Invocation,
    client: kube.ApiClient,
    pod: Pod,
    node: str,
    attachment: Attachment,
    deadline: float,
    stop: threading.Event,
) -> None:
    """The worker: reserve, record the DanmEp, create the link. Everything created is noted on
    ``attachment`` first, so that the rollback knows it even when a later step fails."""
    from danm import ipam

    hooks = invocation.hooks
    request = attachment.request
    network = attachment.network
    label = network.metadata.name
    delegated = attachment.backend != "builtin"
    try:
        hooks.delay("reserve", hooks.delay_reserve, label)
        want4, want6 = delegconf.danm_allocates(network, request) if delegated else (request.ip, request.ip6)
        attachment.ip4 = request.ip
        attachment.ip6 = request.ip6
        if want4 not in ("", "none") or want6 not in ("", "none"):
            _check_stop(stop)
            reservation = ipam.reserve_on_api(
                client,
                attachment.kind,
                attachment.network_namespace,
                label,
                want4,
                want6,
                deadline,
            )
            attachment.reserved = True
            # the DanmEp records what was reserved, else the pod's raw request (§2.10)
            if want4:
                attachment.ip4 = reservation.ip4
            if want6:
                attachment.ip6 = reservation.ip6
        _check_stop(stop)
        endpoint = endpoints.new_endpoint(
            namespace=pod.metadata.namespace,
            pod_name=pod.metadata.name,
            pod_uid=pod.metadata.uid,
            pod_labels=pod.metadata.labels,
            network=network,
            request=request,
            ifname=attachment.ifname,
            container_id=invocation.pod_args(True).infra_container_id,
            netns=invocation.env.netns,
            node=node,
            ip4=attachment.ip4,
            ip6=attachment.ip6,
            cni_network=invocation.conf.name,
        )
        if attachment.device_id:
            endpoint.spec.interface.device_id = attachment.device_id
            endpoint.spec.interface.mac_address = vf_mac_of(invocation, attachment.device_id)
        attachment.endpoint = endpoint  # before the POST: an ambiguous failure may have stored it
        attachment.endpoint = client.create(kube.DANMEPS, endpoint, deadline=deadline)
        hooks.delay("link", hooks.delay_link, label)
        _check_stop(stop)
        if delegated:
            build_delegated(invocation, client, attachment, want4, want6, deadline)
        else:
            temp_name = endpoint.spec.endpoint_id[:IFNAMSIZ]
            attachment.link = netlink.create_ipvlan(invocation.env.netns, attachment.parent, pod_link(attachment, temp_name))
            attachment.result = interface_result(attachment, invocation.env.netns)
        if attachment.link is not None:
            for warning in attachment.link.warnings:
                invocation.log.warning("interface.configure", warning, interface=attachment.ifname)
        attachment.finished = True
    except BaseException as error:  # every failure is this interface's error, reported in aggregate
        attachment.error = failure_from(error)


def vf_mac_of(invocation: Invocation, device_id: str) -> str:
    from danm import sriov

    return sriov.vf_mac(device_id, invocation.conf.sysfs_root, sriov.NetlinkVfMacs())


def build_delegated(
    invocation: Invocation,
    client: kube.ApiClient,
    attachment: Attachment,
    want4: str,
    want6: str,
    deadline: float,
) -> None:
    """A delegated interface: the plugin chain's ADD with danm's addresses (when danm allocated),
    the DPDK dummy for user-space SR-IOV VFs, §3.6 post-processing, and the DanmEp updated with
    the addresses the delegate's own IPAM gave."""
    context = delegation.context_for(invocation.conf, invocation.environ, invocation.env.netns)
    network = attachment.network
    allocated4 = attachment.ip4 if attachment.reserved and want4 else ""
    allocated6 = attachment.ip6 if attachment.reserved and want6 else ""
    strip = delegconf.strips_ipam(attachment.request, allocated4, allocated6)
    chain = delegation.build(context, network, allocated4, allocated6, strip, attachment.device_id, deadline)
    attachment.delegation = chain
    attachment.delegate_ran = True
    plugin_deadline = min(deadline, time.monotonic() + invocation.conf.delegate_deadline)
    # (the aggregated error names the network: the delegate's own error needs no prefix)
    result = delegation.add(context, chain, attachment.ifname, "", plugin_deadline)
    result4, result6 = cniresult.to_endpoint_addresses(result)
    if not attachment.reserved or not want4:
        attachment.ip4 = result4 or attachment.ip4
    if not attachment.reserved or not want6:
        attachment.ip6 = result6 or attachment.ip6
    update_endpoint(client, attachment, delegation.mac_of(result, attachment.ifname), deadline)
    netns_path = invocation.env.netns
    link = pod_link(attachment, attachment.ifname)
    if attachment.device_id and is_userspace_device(invocation, attachment.device_id):
        # a VF bound to a user-space driver has no kernel link: a DPDK dummy stands in (§3.6)
        endpoint = attachment.endpoint
        assert endpoint is not None
        netlink.create_dpdk_dummy(
            netns_path,
            attachment.ifname,
            endpoint.metadata.name,
            endpoint.spec.interface.mac_address,
            attachment.device_id,
            network.spec.options.vlan,
            link.ipv6_enabled,
        )
        attachment.dummy_created = True
        attachment.link = netlink.configure(netns_path, link, attachment.ifname)
    else:
        attachment.link = netlink.post_process(netns_path, link)
        if attachment.link is None:
            invocation.log.warning(
                "interface.no-kernel-link",
                "the delegate created no kernel link (a user-space interface): post-processing skipped",
                interface=attachment.ifname,
                network=network.metadata.name,
            )
    attachment.result = result


def is_userspace_device(invocation: Invocation, device_id: str) -> bool:
    from danm import sriov

    return sriov.is_userspace(device_id, invocation.conf.sysfs_root)


def update_endpoint(client: kube.ApiClient, attachment: Attachment, mac: str, deadline: float) -> None:
    """§4.5: what the delegate decided (its own IPAM's addresses, the interface's MAC) goes into
    the DanmEp. An SR-IOV VF's MAC read from the PF stays."""
    endpoint = attachment.endpoint
    if endpoint is None:
        return
    interface = endpoint.spec.interface
    wanted_mac = interface.mac_address or mac
    if (interface.address, interface.address_ipv6, interface.mac_address) == (attachment.ip4, attachment.ip6, wanted_mac):
        return
    interface.address = attachment.ip4
    interface.address_ipv6 = attachment.ip6
    interface.mac_address = wanted_mac
    attachment.endpoint = client.update(kube.DANMEPS, endpoint, deadline=deadline)


def _check_stop(stop: threading.Event) -> None:
    if stop.is_set():
        raise CniFailure(ERR_TRY_AGAIN, "stopped: the interface deadline expired")


def rollback(invocation: Invocation, client: kube.ApiClient, attachments: list[Attachment]) -> None:
    """Remove every link, DanmEp and reservation of this ADD (workers have all stopped). Each
    step is tried on its own: a failing delegate DEL must not keep the addresses reserved."""
    deadline = time.monotonic() + ROLLBACK_SECONDS
    ours: set[str] = set()
    for attachment in attachments:
        if attachment.endpoint is not None:
            ours.add(attachment.endpoint.metadata.name)
        for step in ("delegate", "link", "endpoint", "addresses"):
            try:
                undo(invocation, client, attachment, step, deadline)
            except BaseException as error:  # a rollback goes on; ThreadNetnsLost included
                invocation.log.error(
                    "rollback.failed", f"{step}: {error}", network=attachment.network.metadata.name, interface=attachment.ifname
                )
    # DanmEps whose creation answer was lost, or an earlier ADD's, still carry the container's labels.
    try:
        container = invocation.pod_args(True)
        for endpoint in endpoints.of_container(client, container.infra_container_id, container.namespace, deadline):
            if endpoint.metadata.name not in ours:
                endpoints.release(client, endpoint, deadline)
    except Exception as sweep_error:
        invocation.log.error("rollback.failed", str(sweep_error))


def undo(invocation: Invocation, client: kube.ApiClient, attachment: Attachment, step: str, deadline: float) -> None:
    """One step of one interface's rollback."""
    from danm import ipam

    netns_path = invocation.env.netns
    if step == "delegate":
        chain = attachment.delegation
        if chain is not None and attachment.delegate_ran:
            context = delegation.context_for(invocation.conf, invocation.environ, invocation.env.netns)
            plugin_deadline = min(deadline, time.monotonic() + invocation.conf.delegate_deadline)
            for problem in delegation.delete(context, chain, attachment.ifname, attachment.describe(), plugin_deadline):
                invocation.log.error("rollback.delegate-failed", problem, interface=attachment.ifname)
            if attachment.network.spec.network_type.lower() == delegconf.FLANNEL:
                delegation.flannel_cleanup(invocation.environ, [attachment.ip4, attachment.ip6])
    elif step == "link":
        # (a failed creation removed its own link; never touch a name that was not ours)
        if attachment.link is not None or attachment.dummy_created:
            netlink.delete_link(netns_path, attachment.ifname)
        if attachment.dummy_created and attachment.endpoint is not None:
            netlink.delete_link(netns_path, attachment.endpoint.metadata.name[: netlink.DPDK_DUMMY_NAME_LENGTH])
    elif step == "endpoint":
        if attachment.endpoint is not None:
            endpoints.delete(client, attachment.endpoint, deadline)
    elif attachment.reserved:  # the addresses this ADD reserved are its own to free
        ipam.free_on_api(
            client,
            attachment.kind,
            attachment.network_namespace,
            attachment.network.metadata.name,
            attachment.ip4,
            attachment.ip6,
            deadline,
        )


def write_network_status(invocation: Invocation, client: kube.ApiClient, pod: Pod, attachments: list[Attachment]) -> None:
    """The pod's ``k8s.v1.cni.cncf.io/network-status`` annotation, through pods/status (as
    Multus writes it), so tools built for Multus see every danm interface. Best effort: a pod
    whose interfaces all work is not failed over its annotation."""
    from danm import networkstatus

    try:
        networkstatus.write(client, pod, networkstatus.entries(attachments), time.monotonic() + NETWORK_STATUS_SECONDS)
    except Exception as error:
        invocation.log.warning("network-status.failed", str(error))


def record_attachment(invocation: Invocation, attachments: list[Attachment]) -> None:
    """A node-local note of this sandbox's DanmEps, so that a DEL that cannot reach the API
    server can still remove the links and name what holds addresses in its tombstone."""
    from danm import nodestate

    try:
        entries = []
        for attachment in attachments:
            endpoint = attachment.endpoint
            if endpoint is None:
                continue
            entry = nodestate.TombstoneEndpoint(
                endpoint.metadata.namespace,
                endpoint.metadata.name,
                attachment.network.metadata.name,
                attachment.kind,
                attachment.ip4,
                attachment.ip6,
                attachment.ifname,
                invocation.env.netns,
            )
            entries.append(entry)
        nodestate.write_tombstone(
            invocation.attachments_dir,
            invocation.pod_args(True).infra_container_id,
            entries,
            "attached",
            time.time(),
        )
    except Exception as error:
        invocation.log.warning("attachment-record.failed", str(error))
