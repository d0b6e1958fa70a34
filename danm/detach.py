"""CNI DEL and GC: release a sandbox's interfaces, addresses and DanmEps.

DEL is repeatable: a deleted network, a missing netns, a missing link or DanmEp are not errors,
and DEL after a partial ADD removes what there is. When the API server cannot be reached (or
refuses danm's credentials) DEL still removes the links it knows of from the node-local note ADD
left, and answers "try again" (11) so that the runtime repeats it; it does so for a bounded time
per container (``delRetrySeconds``, counted from the first failure recorded on disk), then
succeeds and leaves a node-local tombstone naming the DanmEps that still hold addresses, for a
later reclamation. GC releases this node's DanmEps whose container the runtime no longer has.
"""

from __future__ import annotations

import datetime
import os
import socket
import threading
import time
from typing import TYPE_CHECKING, Final

from danm import delegconf, endpoints, ipam, kube, netlink, nodestate
from danm.cni import ERR_DELEGATE, ERR_INVALID_CONFIG, ERR_TRY_AGAIN, CniFailure, failure_from
from danm.types import DanmEp, Network, ObjectMeta, Pod

if TYPE_CHECKING:
    from danm.invocation import Invocation

# Failures after which DEL should be repeated later rather than be given up at once.
_UNREACHABLE: Final = (
    kube.ConnectionFailed,
    kube.DeadlineExceeded,
    kube.ServerError,
    kube.TooManyRequests,
    kube.Unauthorized,
    kube.Forbidden,
    TimeoutError,
    ConnectionError,
)


def recorded_endpoints(invocation: Invocation, container_id: str) -> list[nodestate.TombstoneEndpoint]:
    """What ADD noted on this node for the container (empty when nothing was noted)."""
    return nodestate.read_tombstone(invocation.attachments_dir, container_id)


def delete(invocation: Invocation) -> None:
    # lenient: a DEL must not fail forever over CNI_ARGS an ADD would have refused
    args = invocation.pod_args(require_pod=False, strict=False)
    container_id = args.infra_container_id
    log = invocation.log
    if args.namespace:
        log.set_context(pod=f"{args.namespace}/{args.name}")
    deadline = invocation.deadline()
    try:
        client = invocation.client()
        found = endpoints.of_container(client, container_id, args.namespace, deadline)
        errors = release_all(invocation, client, found)
    except _UNREACHABLE as error:
        unreachable(invocation, container_id, error)
        return
    except Exception as other:  # no kubeconfig, danm's CRDs gone...: retried too, but bounded
        unreachable(invocation, container_id, other)
        return
    if errors:
        first = errors[0]
        if isinstance(first, _UNREACHABLE):
            unreachable(invocation, container_id, first)
            return
        failure = failure_from(first)
        give_up_or_retry(invocation, container_id, failure.code, "\n".join(str(error) for error in errors))
        return
    nodestate.clear_failure(invocation.failures_dir, container_id)
    nodestate.remove_tombstone(invocation.attachments_dir, container_id)
    for endpoint in found:
        log.info("interface.deleted", network=endpoint.spec.network_name, interface=endpoint.spec.interface.name)
    if not found:
        log.info("nothing-to-delete", "no DanmEp records this container")


def release_all(invocation: Invocation, client: kube.ApiClient, found: list[DanmEp]) -> list[Exception]:
    """Release every endpoint concurrently; returns the failures."""
    errors: list[Exception] = []
    lock = threading.Lock()

    def release_one(endpoint: DanmEp) -> None:
        try:
            release_endpoint(invocation, client, endpoint, time.monotonic() + invocation.conf.interface_deadline)
        except BaseException as error:  # recorded, ThreadNetnsLost included: DEL must not pass over it
            with lock:
                errors.append(error if isinstance(error, Exception) else RuntimeError(str(error)))

    if len(found) == 1:
        release_one(found[0])
        return errors
    threads = [threading.Thread(target=release_one, args=(endpoint,), daemon=True) for endpoint in found]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return errors


def release_endpoint(invocation: Invocation, client: kube.ApiClient, endpoint: DanmEp, deadline: float) -> None:
    """Everything an interface holds: the delegate's state (its DEL), the link, the DanmEp and
    danm's addresses."""
    kind, namespace, name = endpoints.network_ref(endpoint)
    network = endpoints.get_network(client, kind, namespace, name, deadline)
    if network is not None and delegconf.backend(endpoint.spec.network_type) != "builtin":
        teardown_delegate(invocation, endpoint, network, deadline)
    remove_link(invocation, endpoint)
    endpoints.release_with(client, endpoint, network, deadline)


def teardown_delegate(invocation: Invocation, endpoint: DanmEp, network: Network, deadline: float) -> None:
    """The delegate's DEL, with the configuration rebuilt by ADD's rules. A static file that is
    gone, or an SR-IOV device that vanished, only skips it (with a warning): danm's addresses
    and the DanmEp are released anyway. A delegate that fails its DEL fails this DEL (retried)."""
    from danm import delegation

    interface = endpoint.spec.interface
    options = network.spec.options
    pool6 = options.allocation_pool_v6
    ip4 = interface.address if ipam.allocated_by_danm(interface.address, options.cidr) else ""
    ip6 = interface.address_ipv6 if pool6 is not None and ipam.allocated_by_danm(interface.address_ipv6, pool6.cidr) else ""
    strip = not ip4 and not ip6 and "none" in (interface.address, interface.address_ipv6)
    netns = endpoints.text(endpoint.spec.netns) or invocation.env.netns
    context = delegation.context_for(invocation.conf, invocation.environ, netns)
    context.container_id = endpoints.text(endpoint.spec.container_id) or context.container_id
    where = f"DanmEp {endpoint.metadata.namespace}/{endpoint.metadata.name} ({interface.name})"
    device = endpoints.text(interface.device_id)
    try:
        chain = delegation.build(context, network, ip4, ip6, strip, device, deadline)
    except (delegconf.ConfigGone, delegation.DeviceGone) as missing:
        invocation.log.warning("delegate.skipped", f"{where}: {missing.msg}; the delegate's DEL is skipped")
        return
    plugin_deadline = min(deadline, time.monotonic() + invocation.conf.delegate_deadline)
    problems = delegation.delete(context, chain, interface.name, where, plugin_deadline)
    if network.spec.network_type.lower() == delegconf.FLANNEL:
        delegation.flannel_cleanup(invocation.environ, [interface.address, interface.address_ipv6])
    if problems:
        raise CniFailure(ERR_DELEGATE, "\n".join(problems))


def remove_link(invocation: Invocation, endpoint: DanmEp) -> None:
    """Delete the endpoint's link in its netns; a missing netns or link is fine."""
    netns = endpoints.text(endpoint.spec.netns) or invocation.env.netns
    name = endpoint.spec.interface.name
    if netns and name and os.path.exists(netns):  # no pyroute2 import for a gone sandbox
        netlink.delete_link(netns, name)
        if endpoints.text(endpoint.spec.interface.device_id):
            # a DPDK VF's VLAN variant stands on a dummy named from the DanmEp (§3.6 step 1)
            netlink.delete_link(netns, endpoint.metadata.name[: netlink.DPDK_DUMMY_NAME_LENGTH])


def unreachable(invocation: Invocation, container_id: str, error: BaseException) -> None:
    """The API server cannot help: remove the noted links, then retry or give up (see module)."""
    log = invocation.log
    if isinstance(error, (kube.Unauthorized, kube.Forbidden)):
        log.error(
            "credentials.rejected",
            f"the API server rejected danm's credentials during DEL: {error}; "
            "addresses stay allocated until DEL succeeds",
        )
        post_event(invocation, f"danm cannot release the pod's addresses: the API server rejected its credentials: {error}")
    for entry in recorded_endpoints(invocation, container_id):
        netns = entry.netns or invocation.env.netns
        if netns and entry.interface and os.path.exists(netns):
            try:
                netlink.delete_link(netns, entry.interface)
            except netlink.LinkError as link_error:
                log.warning("link.delete-failed", str(link_error), interface=entry.interface)
    code = ERR_TRY_AGAIN if isinstance(error, _UNREACHABLE) else failure_from(error).code
    give_up_or_retry(invocation, container_id, code, f"the API server cannot be used: {error}")


def give_up_or_retry(invocation: Invocation, container_id: str, code: int, reason: str) -> None:
    now = time.time()
    first = nodestate.first_failure(invocation.failures_dir, container_id, now)
    window = invocation.conf.del_retry_seconds
    if now - first < window:
        raise CniFailure(
            code,
            f"DEL of container {container_id} failed: {reason}",
            f"retrying for {window:g} s since the first failure; then the addresses are left in a node-local tombstone",
        )
    holding = [entry for entry in recorded_endpoints(invocation, container_id) if "/" in entry.ip4 or "/" in entry.ip6]
    path = nodestate.write_tombstone(invocation.tombstones_dir, container_id, holding, reason, now)
    nodestate.clear_failure(invocation.failures_dir, container_id)
    nodestate.remove_tombstone(invocation.attachments_dir, container_id)
    invocation.log.error(
        "del.gave-up",
        f"DEL kept failing for {now - first:.0f} s: {reason}; {len(holding)} DanmEp(s) still hold addresses",
        tombstone=path,
        endpoints=",".join(f"{entry.namespace}/{entry.name}" for entry in holding),
    )


def post_event(invocation: Invocation, message: str) -> None:
    args = invocation.pod_args(require_pod=False)
    if not args.namespace or not args.name:
        return
    from danm import events

    pod = Pod(metadata=ObjectMeta(name=args.name, namespace=args.namespace, uid=args.uid))
    try:
        client = invocation.client()
    except Exception:
        return
    events.warn_pod(client, pod, "DanmNetworkTeardownFailed", message, invocation.node_name(), invocation.log)


# --------------------------------------------------------------------------------------------
# GC


def created_before(endpoint: DanmEp, moment: float) -> bool:
    """Whether the DanmEp was created before ``moment`` (wall clock). Timestamps have whole
    seconds, so one created in the same second as ``moment`` does not count."""
    stamp = endpoint.metadata.creation_timestamp
    if not stamp:
        return False
    try:
        created = datetime.datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    except ValueError:
        return False
    return created.timestamp() < int(moment)


def orphans(found: list[DanmEp], valid: set[str], moment: float) -> list[DanmEp]:
    """DanmEps whose container the runtime no longer has, created before ``moment``. The
    runtime's ifname (eth0) is not danm's (eth1, ext2...): only the container ID is compared."""
    result = []
    for endpoint in found:
        container_id = endpoints.text(endpoint.spec.container_id)
        if container_id and container_id not in valid and created_before(endpoint, moment):
            result.append(endpoint)
    return result


def judged_by(endpoint: DanmEp, cni_network: str) -> str:
    """Whether this GC may judge the DanmEp: "yes" (made under this CNI network name), "no"
    (another name: its runtime list is not ours), or "pod" (no such label: the original's, or
    older; released only when its pod is gone)."""
    made_by = (endpoint.metadata.labels or {}).get(endpoints.LABEL_CNI_NETWORK)
    if made_by is None:
        return "pod"
    return "yes" if made_by == endpoints.label_value(cni_network) else "no"


def pod_is_gone(client: kube.ApiClient, endpoint: DanmEp, deadline: float) -> bool:
    try:
        pod = client.get(kube.PODS, endpoint.metadata.namespace, endpoint.spec.pod, Pod, deadline=deadline)
    except kube.NotFound:
        return True
    uid = endpoints.text(endpoint.spec.pod_uid)
    return bool(uid) and pod.metadata.uid != uid


def gc(invocation: Invocation) -> None:
    started = time.time()
    attachments = invocation.conf.valid_attachments
    if not isinstance(attachments, list):
        raise CniFailure(
            ERR_INVALID_CONFIG,
            "GC needs cni.dev/valid-attachments in the network config",
            "without the list every attachment would look stale",
        )
    valid = {attachment.container_id for attachment in attachments}
    client = invocation.client()
    node = invocation.node_name()
    deadline = invocation.deadline()
    found = endpoints.of_node(client, node, socket.gethostname(), deadline)
    candidates = orphans(found, valid, started - invocation.conf.gc_min_age)
    stale = []
    for endpoint in candidates:
        verdict = judged_by(endpoint, invocation.conf.name)
        if verdict == "yes" or (verdict == "pod" and pod_is_gone(client, endpoint, deadline)):
            stale.append(endpoint)
    errors = release_all(invocation, client, stale)
    for endpoint in stale:
        nodestate.remove_tombstone(invocation.attachments_dir, endpoints.text(endpoint.spec.container_id))
        invocation.log.info(
            "gc.released",
            network=endpoint.spec.network_name,
            interface=endpoint.spec.interface.name,
            endpoint=f"{endpoint.metadata.namespace}/{endpoint.metadata.name}",
            stale_container=endpoints.text(endpoint.spec.container_id),
        )
    if errors:
        raise failure_from(errors[0])
