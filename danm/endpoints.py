"""DanmEps: the record of one pod interface, its identity labels, lookups and release.

A DanmEp carries the pod's labels (svcwatcher selects on them, as with the original) plus
identity labels under the reserved ``danm.io/`` prefix, so that the CNI plugin finds a
container's or a node's interfaces with one label-selected list:

* ``danm.io/cid-hash``: a hash of the sandbox's container ID (64 characters do not fit a label
  value's 63), always verified against ``spec.CID``;
* ``danm.io/node``: the node the interface lives on;
* ``danm.io/pod-uid``: the pod's UID, for the stale-record cleanup at the start of ADD.

DanmEps written by the original have none of these, so every lookup falls back to listing and
filtering on the spec fields. Pod labels under ``danm.io/`` are not copied: the prefix is
danm's, and a pod must not be able to pose as another container.
"""

from __future__ import annotations

import hashlib
import uuid
from typing import TYPE_CHECKING, Final

from danm import ipam, kube, labels
from danm.types import (
    KIND_CLUSTERNETWORK,
    KIND_DANMNET,
    KIND_TENANTNETWORK,
    DanmEp,
    EndpointInterface,
    EndpointSpec,
    Network,
    ObjectMeta,
)

if TYPE_CHECKING:
    from danm.types import InterfaceRequest

IDENTITY_PREFIX: Final = "danm.io/"
LABEL_CID_HASH: Final = "danm.io/cid-hash"
LABEL_NODE: Final = "danm.io/node"
LABEL_POD_UID: Final = "danm.io/pod-uid"
# the CNI network name (danm's config "name") that made the interface: GC only judges its own
LABEL_CNI_NETWORK: Final = "danm.io/cni-network"
_HASH_CHARS: Final = 40  # 160 bits of sha256: collisions are verified away against spec.CID


def container_hash(container_id: str) -> str:
    return hashlib.sha256(container_id.encode()).hexdigest()[:_HASH_CHARS]


def label_value(text: str) -> str:
    """``text`` itself when it is a valid label value, else a hash of it."""
    if labels.label_value_error(text) is None:
        return text
    return "sha-" + hashlib.sha256(text.encode()).hexdigest()[:_HASH_CHARS]


def identity_labels(container_id: str, node: str, pod_uid: str, cni_network: str = "") -> dict[str, str]:
    result = {LABEL_CID_HASH: container_hash(container_id), LABEL_NODE: label_value(node)}
    if pod_uid and labels.label_value_error(pod_uid) is None:
        result[LABEL_POD_UID] = pod_uid
    if cni_network:
        result[LABEL_CNI_NETWORK] = label_value(cni_network)
    return result


def endpoint_labels(pod_labels: dict[str, str] | None, identity: dict[str, str]) -> dict[str, str]:
    copied = {key: value for key, value in (pod_labels or {}).items() if not key.startswith(IDENTITY_PREFIX)}
    copied.update(identity)
    return copied


def new_endpoint(
    *,
    namespace: str,
    pod_name: str,
    pod_uid: str,
    pod_labels: dict[str, str] | None,
    network: Network,
    request: InterfaceRequest,
    ifname: str,
    container_id: str,
    netns: str,
    node: str,
    ip4: str,
    ip6: str,
    cni_network: str = "",
) -> DanmEp:
    """A DanmEp for a new interface, named by a fresh UUID (its EndpointID, as the original)."""
    endpoint_id = str(uuid.uuid4())
    return DanmEp(
        metadata=ObjectMeta(
            name=endpoint_id,
            namespace=namespace,
            labels=endpoint_labels(pod_labels, identity_labels(container_id, node, pod_uid, cni_network)),
        ),
        spec=EndpointSpec(
            network_name=network.metadata.name,
            network_type=network.spec.network_type,
            endpoint_id=endpoint_id,
            interface=EndpointInterface(
                name=ifname,
                address=ip4,
                address_ipv6=ip6,
                proutes=request.proutes,
                proutes6=request.proutes6,
            ),
            host=node,
            pod=pod_name,
            pod_uid=pod_uid,
            container_id=container_id,
            netns=netns,
            api_type=network.kind or KIND_DANMNET,
        ),
    )


def text(value: object) -> str:
    """A DanmEp's optional (omitempty) field as a string; absent is ""."""
    return value if isinstance(value, str) else ""


def network_ref(endpoint: DanmEp) -> tuple[str, str, str]:
    """(kind, namespace, name) of the endpoint's network; apiType "" is a DanmNet (§2.5)."""
    kind = endpoint.spec.api_type or KIND_DANMNET
    if kind == KIND_CLUSTERNETWORK:
        return kind, "", endpoint.spec.network_name
    if kind not in (KIND_DANMNET, KIND_TENANTNETWORK):
        kind = KIND_DANMNET
    return kind, endpoint.metadata.namespace, endpoint.spec.network_name


def of_container(client: kube.ApiClient, container_id: str, namespace: str, deadline: float) -> list[DanmEp]:
    """The DanmEps of one sandbox: labelled ones cluster-wide, else (DanmEps of the original)
    those of ``namespace`` (all namespaces when unknown) whose spec.CID matches."""
    if not container_id:
        return []  # an empty CID would match every legacy DanmEp without one (§11.6)
    selector = f"{LABEL_CID_HASH}={container_hash(container_id)}"
    found, _ = client.list(kube.DANMEPS, "", DanmEp, label_selector=selector, deadline=deadline)
    matching = [endpoint for endpoint in found if text(endpoint.spec.container_id) == container_id]
    if matching:
        return matching
    legacy, _ = client.list(kube.DANMEPS, namespace, DanmEp, deadline=deadline)
    return [endpoint for endpoint in legacy if text(endpoint.spec.container_id) == container_id]


def of_node(client: kube.ApiClient, node: str, hostname: str, deadline: float) -> list[DanmEp]:
    """The DanmEps of this node: labelled ones, plus unlabelled (legacy) ones whose Host is the
    node name or the OS hostname (the original recorded the hostname)."""
    labelled, _ = client.list(
        kube.DANMEPS, "", DanmEp, label_selector=f"{LABEL_NODE}={label_value(node)}", deadline=deadline
    )
    result = [endpoint for endpoint in labelled if text(endpoint.spec.host) in (node, "")]
    legacy, _ = client.list(kube.DANMEPS, "", DanmEp, label_selector=f"!{LABEL_NODE}", deadline=deadline)
    result += [endpoint for endpoint in legacy if text(endpoint.spec.host) in (node, hostname)]
    return result


def get_network(client: kube.ApiClient, kind: str, namespace: str, name: str, deadline: float) -> Network | None:
    """The network, or None when it no longer exists."""
    resource = kube.network_resource(kind)
    try:
        network = client.get(resource, namespace if resource.namespaced else "", name, Network, deadline=deadline)
    except kube.NotFound:
        return None
    if network.kind != kind:
        network = Network(api_version=network.api_version, kind=kind, metadata=network.metadata, spec=network.spec)
    return network


def holds_danm_addresses(endpoint: DanmEp, network: Network) -> bool:
    """Whether the endpoint's addresses lie in the network's tracked ranges (§2.10)."""
    options = network.spec.options
    pool6 = options.allocation_pool_v6
    address = endpoint.spec.interface
    return ipam.allocated_by_danm(address.address, options.cidr) or (
        pool6 is not None and ipam.allocated_by_danm(address.address_ipv6, pool6.cidr)
    )


def release(client: kube.ApiClient, endpoint: DanmEp, deadline: float) -> bool:
    """Free the endpoint's addresses (when its network still exists) and delete it.

    A missing network or an already deleted DanmEp is fine (§11.5: the original crashed or left
    the DanmEp undeletable). Returns whether the network still existed.
    """
    kind, namespace, name = network_ref(endpoint)
    network = get_network(client, kind, namespace, name, deadline)
    release_with(client, endpoint, network, deadline)
    return network is not None


def release_with(client: kube.ApiClient, endpoint: DanmEp, network: Network | None, deadline: float) -> None:
    """``release`` with the endpoint's network already read (None: it no longer exists).

    The DanmEp goes first and its addresses are freed only when this call deleted it: freeing
    first, a DEL retried after a failed DELETE would free an address that another pod may hold
    by then (two pods, one IP). The other order can only leak, which `danm ipam check` finds.
    """
    if not delete(client, endpoint, deadline) or network is None:
        return
    options = network.spec.options
    pool6 = options.allocation_pool_v6
    address = endpoint.spec.interface
    # each family only when it lies in the range danm tracks (§11.33: one rule for both)
    ip4 = address.address if ipam.allocated_by_danm(address.address, options.cidr) else ""
    ip6 = address.address_ipv6 if pool6 is not None and ipam.allocated_by_danm(address.address_ipv6, pool6.cidr) else ""
    if ip4 or ip6:
        kind, namespace, name = network_ref(endpoint)
        ipam.free_on_api(client, kind, namespace, name, ip4, ip6, deadline)


def delete(client: kube.ApiClient, endpoint: DanmEp, deadline: float) -> bool:
    """Delete the DanmEp (this very object: its UID is a precondition); False when it was gone."""
    preconditions = {"uid": endpoint.metadata.uid} if endpoint.metadata.uid else None
    try:
        client.delete(
            kube.DANMEPS, endpoint.metadata.namespace, endpoint.metadata.name, preconditions=preconditions, deadline=deadline
        )
    except kube.NotFound:
        return False
    return True
