"""The wire model of danm: every JSON document danm reads or writes, as msgspec Structs.

This module stays interpreted (see pyproject.toml): Structs defined in mypyc-compiled code lose
``rename``, ``forbid_unknown_fields`` and ``tag``. Compiled modules import them from here.

Field names are Python names; ``rename`` maps them onto the exact wire names, which the original
Go implementation fixed (note the capitalisation: ``NetworkID``, ``host_device``, ``lastIp``).

Writing policy: danm never PUTs a Kubernetes object it did not create. A decoded Struct keeps
only the modelled fields, so an update through a Struct would drop whatever a newer CRD version,
another controller or a user added. Every change to an existing object is sent as a JSON
Patch of the modelled fields that changed, carrying ``metadata.resourceVersion`` for optimistic
concurrency (see ``danm/patch.py``). Only objects danm creates (DanmEps) are written whole.

Omission rules follow what the original wrote, so objects round-trip byte-for-byte in meaning:
Go ``omitempty`` fields are omitted when empty; fields the original always wrote are always
written. Where one Struct mixes both, always-written fields have plain defaults and the
``omitempty`` ones default to ``msgspec.UNSET``.
"""

from __future__ import annotations

from typing import Final, Literal

from msgspec import UNSET, Raw, Struct, UnsetType, field

API_GROUP: Final = "danm.io"
API_VERSION: Final = "danm.io/v1"
LEGACY_API_GROUP: Final = "danm.k8s.io"

KIND_DANMNET: Final = "DanmNet"
KIND_TENANTNETWORK: Final = "TenantNetwork"
KIND_CLUSTERNETWORK: Final = "ClusterNetwork"
KIND_TENANTCONFIG: Final = "TenantConfig"
KIND_DANMEP: Final = "DanmEp"
KIND_NAD: Final = "NetworkAttachmentDefinition"

NETWORK_KINDS: Final = (KIND_DANMNET, KIND_TENANTNETWORK, KIND_CLUSTERNETWORK)
NetworkKind = Literal["DanmNet", "TenantNetwork", "ClusterNetwork"]


# --------------------------------------------------------------------------------------------
# Kubernetes metadata


class OwnerReference(Struct, omit_defaults=True, rename="camel"):
    api_version: str
    kind: str
    name: str
    uid: str
    controller: bool | None = None
    block_owner_deletion: bool | None = None


class ObjectMeta(Struct, omit_defaults=True, rename="camel"):
    """metadata of any Kubernetes object, every field of meta/v1 ObjectMeta."""

    name: str = ""
    generate_name: str = ""
    namespace: str = ""
    self_link: str = ""
    uid: str = ""
    resource_version: str = ""
    generation: int = 0
    creation_timestamp: str | None = None
    deletion_timestamp: str | None = None
    deletion_grace_period_seconds: int | None = None
    labels: dict[str, str] | None = None
    annotations: dict[str, str] | None = None
    owner_references: list[OwnerReference] | None = None
    finalizers: list[str] | None = None
    # Server-side apply bookkeeping: danm never reads it, only carries it through unchanged.
    managed_fields: list[dict[str, object]] | None = None


# --------------------------------------------------------------------------------------------
# Network objects: DanmNet, TenantNetwork and ClusterNetwork share one layout.


class AllocationPool(Struct, rename={"last_ip": "lastIp"}):
    """IPv4 dynamic range. The original always wrote all three keys, even when empty."""

    start: str = ""
    end: str = ""
    # Last dynamically allocated address; the original writes it in CIDR form (10.0.0.5/24).
    last_ip: str = ""


class AllocationPoolV6(Struct, rename={"last_ip": "lastIp"}):
    """IPv6 dynamic range over ``cidr``, the sub-prefix of net6 whose bitmap is ``alloc6``."""

    start: str = ""
    end: str = ""
    last_ip: str = ""
    cidr: str = ""


class NetworkOptions(Struct, omit_defaults=True):
    """spec.Options. The wire names are the field names."""

    host_device: str = ""
    device_pool: str = ""
    cidr: str = ""
    allocation_pool: AllocationPool | None = None
    # None and {} differ: the webhook refuses routes (even {}) on a network without cidr.
    routes: dict[str, str] | None = None
    vxlan: int = 0
    vlan: int = 0
    alloc: str = ""
    container_prefix: str = ""
    rt_tables: int = 0
    net6: str = ""
    routes6: dict[str, str] | None = None
    alloc6: str = ""
    allocation_pool_v6: AllocationPoolV6 | None = None


class NetworkSpec(
    Struct,
    omit_defaults=True,
    rename={
        "network_id": "NetworkID",
        "network_type": "NetworkType",
        "allowed_tenants": "AllowedTenants",
        "options": "Options",
    },
):
    network_id: str = ""
    network_type: str = ""
    # None and [] differ: the webhook refuses the attribute (even []) outside ClusterNetwork.
    allowed_tenants: list[str] | None = None
    options: NetworkOptions = field(default_factory=NetworkOptions)


class Network(Struct, rename={"api_version": "apiVersion"}):
    """A DanmNet, TenantNetwork or ClusterNetwork; ``kind`` tells which."""

    api_version: str = API_VERSION
    kind: str = KIND_DANMNET
    metadata: ObjectMeta = field(default_factory=ObjectMeta)
    spec: NetworkSpec = field(default_factory=NetworkSpec)


# --------------------------------------------------------------------------------------------
# TenantConfig (cluster-scoped, no spec: its fields are top-level)


class InterfaceProfile(Struct, omit_defaults=True, rename="camel"):
    """A host device (or device pool, when the name has a '/') tenants may use."""

    name: str
    vni_type: str = ""
    # cpuset-style list: "900-4999,5000"
    vni_range: str = ""
    # base64 bitmap of 5001 bits (VNI 0..5000), MSB-first, managed by the webhook
    alloc: str = ""


class TenantConfig(Struct, rename="camel"):
    api_version: str = API_VERSION
    kind: str = KIND_TENANTCONFIG
    metadata: ObjectMeta = field(default_factory=ObjectMeta)
    host_devices: list[InterfaceProfile] | UnsetType = UNSET
    # NetworkType -> forced NetworkID; keys are matched case-insensitively
    network_ids: dict[str, str] | UnsetType = UNSET


# --------------------------------------------------------------------------------------------
# DanmEp: one per pod interface. The original wrote most fields even when empty.


class EndpointInterface(
    Struct,
    rename={
        "name": "Name",
        "address": "Address",
        "address_ipv6": "AddressIPv6",
        "mac_address": "MacAddress",
        "proutes": "proutes",
        "proutes6": "proutes6",
        "device_id": "DeviceID",
    },
):
    name: str = ""
    # IPv4 in CIDR form, "none", or "" (no IPv4 requested)
    address: str = ""
    address_ipv6: str = ""
    mac_address: str = ""
    # Written as null when the pod asked for no policy routes, as the original did.
    proutes: dict[str, str] | None = None
    proutes6: dict[str, str] | None = None
    # PCI address of an SR-IOV VF; omitted when there is none.
    device_id: str | UnsetType = UNSET


class EndpointSpec(
    Struct,
    rename={
        "network_name": "NetworkName",
        "network_type": "NetworkType",
        "endpoint_id": "EndpointID",
        "interface": "Interface",
        "host": "Host",
        "pod": "Pod",
        "pod_uid": "PodUID",
        "container_id": "CID",
        "netns": "netns",
        "api_type": "apiType",
    },
):
    network_name: str = ""
    network_type: str = ""
    endpoint_id: str = ""
    interface: EndpointInterface = field(default_factory=EndpointInterface)
    host: str | UnsetType = UNSET
    pod: str = ""
    pod_uid: str | UnsetType = UNSET
    # K8S_POD_INFRA_CONTAINER_ID of the sandbox, which DEL matches on
    container_id: str | UnsetType = UNSET
    netns: str | UnsetType = UNSET
    # Kind of the network: DanmNet, TenantNetwork, ClusterNetwork, or "" (legacy: DanmNet)
    api_type: str = ""


class DanmEp(Struct, rename={"api_version": "apiVersion"}):
    api_version: str = API_VERSION
    kind: str = KIND_DANMEP
    metadata: ObjectMeta = field(default_factory=ObjectMeta)
    spec: EndpointSpec = field(default_factory=EndpointSpec)


# --------------------------------------------------------------------------------------------
# NetworkAttachmentDefinition (k8s.cni.cncf.io/v1), read by netwatcher


class NadSpec(Struct, omit_defaults=True):
    # A CNI network config (or conflist) as a JSON string
    config: str = ""


class NetworkAttachmentDefinition(Struct, rename={"api_version": "apiVersion"}):
    api_version: str = "k8s.cni.cncf.io/v1"
    kind: str = KIND_NAD
    metadata: ObjectMeta = field(default_factory=ObjectMeta)
    spec: NadSpec = field(default_factory=NadSpec)


# --------------------------------------------------------------------------------------------
# Pods: danm reads metadata only, and writes it with patches.


class PodSpec(Struct, omit_defaults=True, rename="camel"):
    """The one field of a PodSpec danm reads: the node the pod was scheduled to."""

    node_name: str = ""


class Pod(Struct, rename={"api_version": "apiVersion"}):
    api_version: str = "v1"
    kind: str = "Pod"
    metadata: ObjectMeta = field(default_factory=ObjectMeta)
    # UNSET keeps a decoded-then-encoded pod free of a "spec" it never had
    spec: PodSpec | UnsetType = UNSET


# The annotation through which Multus-era tools see every pod interface (landscape §1.4).
NETWORK_STATUS_ANNOTATION: Final = "k8s.v1.cni.cncf.io/network-status"


class NetworkStatus(Struct, omit_defaults=True):
    """One pod interface in the ``k8s.v1.cni.cncf.io/network-status`` annotation."""

    name: str
    interface: str = ""
    ips: list[str] | None = None
    mac: str = ""
    mtu: int = 0
    default: bool = False
    # Multus always writes dns, usually {}; so does danm.
    dns: CniDns = field(default_factory=lambda: CniDns())
    gateway: list[str] | None = None


class ObjectReference(Struct, omit_defaults=True, rename="camel"):
    api_version: str = ""
    kind: str = ""
    namespace: str = ""
    name: str = ""
    uid: str = ""


class EventSource(Struct, omit_defaults=True):
    component: str = ""
    host: str = ""


class Event(Struct, omit_defaults=True, rename="camel"):
    """core/v1 Event: danm posts Warnings on a Pod when its network setup fails."""

    api_version: str = "v1"
    kind: str = "Event"
    metadata: ObjectMeta = field(default_factory=ObjectMeta)
    involved_object: ObjectReference = field(default_factory=ObjectReference)
    reason: str = ""
    message: str = ""
    source: EventSource = field(default_factory=EventSource)
    first_timestamp: str = ""
    last_timestamp: str = ""
    count: int = 0
    type: str = ""
    reporting_component: str = ""
    reporting_instance: str = ""


class InterfaceRequest(
    Struct,
    omit_defaults=True,
    forbid_unknown_fields=True,
    rename={"tenant_network": "tenantNetwork", "cluster_network": "clusterNetwork"},
):
    """One entry of the pod annotation ``danm.io/interfaces``.

    Decode it through ``danm.annotation``, which also accepts the key spellings the original
    accepted (it matched keys case-insensitively) and names the offending entry on error.
    """

    network: str = ""
    tenant_network: str = ""
    cluster_network: str = ""
    # "dynamic", "none", a static address (optionally with /prefix), or "" for none requested
    ip: str = ""
    ip6: str = ""
    # policy routes: destination CIDR -> gateway
    proutes: dict[str, str] | None = None
    proutes6: dict[str, str] | None = None


# --------------------------------------------------------------------------------------------
# CNI


class DanmNetConf(
    Struct,
    rename={
        "cni_version": "cniVersion",
        "cni_versions": "cniVersions",
        "cni_dir": "cniDir",
        "naming_scheme": "namingScheme",
        "runtime_config": "runtimeConfig",
        "prev_result": "prevResult",
        "valid_attachments": "cni.dev/valid-attachments",
        "log_file": "logFile",
        "log_level": "logLevel",
        "log_max_bytes": "logMaxBytes",
        "log_backups": "logBackups",
        "interface_deadline": "interfaceDeadlineSeconds",
        "max_concurrent": "maxConcurrentInvocations",
        "run_dir": "runDir",
        "state_dir": "stateDir",
        "del_retry_seconds": "delRetrySeconds",
        "node_name": "nodeName",
        "status_cache_seconds": "statusCacheSeconds",
        "ipam_plugin": "ipamPlugin",
        "delegate_deadline": "delegateDeadlineSeconds",
        "kubelet_socket": "podResourcesSocket",
        "sysfs_root": "sysfsRoot",
        "gc_min_age": "gcMinAgeSeconds",
    },
):
    """danm's own CNI network config. Unknown keys (runtime additions, ``*_comment``) are ignored."""

    cni_version: str = ""
    # CNI 1.1: the runtime may list every version the config supports
    cni_versions: list[str] | UnsetType = UNSET
    name: str = ""
    type: str = ""
    kubeconfig: str = ""
    cni_dir: str = "/etc/cni/net.d"
    naming_scheme: str = ""
    capabilities: dict[str, bool] | UnsetType = UNSET
    runtime_config: dict[str, Raw] | UnsetType = UNSET
    prev_result: Raw | UnsetType = UNSET
    # GC (CNI 1.1): the attachments the runtime still has; everything else may go
    valid_attachments: list[ValidAttachment] | UnsetType = UNSET
    # danm's own keys. The original wrote its log to /var/log/danm.log.
    log_file: str = "/var/log/danm.log"
    log_level: str = "info"
    log_max_bytes: int = 10 * 1024 * 1024
    log_backups: int = 3
    # each interface's whole setup (reservation, DanmEp, link) must finish within this
    interface_deadline: float = 30.0
    # node-wide bound on concurrent danm invocations (memory under bursts); 0 = unbounded
    max_concurrent: int = 16
    run_dir: str = "/run/danm"
    state_dir: str = "/var/lib/danm"
    # how long DEL answers "try again" while the API server is unreachable
    del_retry_seconds: float = 600.0
    node_name: str = ""
    status_cache_seconds: float = 5.0
    # how danm's addresses reach a delegate: "auto" (the standard static IPAM plugin when it is
    # in CNI_PATH, else fakeipam), "static" or "fakeipam"
    ipam_plugin: str = "auto"
    # each delegated plugin run (ADD, DEL, VERSION) must end within this; then its process group
    # is killed
    delegate_deadline: float = 20.0
    # kubelet's PodResources API, for the device IDs of SR-IOV device pools
    kubelet_socket: str = "/var/lib/kubelet/pod-resources/kubelet.sock"
    sysfs_root: str = "/sys"
    # GC judges only DanmEps at least this old by the node's clock: the API server's creation
    # timestamps come from another clock, and an ADD may be in flight as GC starts
    gc_min_age: float = 60.0


class ValidAttachment(Struct, rename={"container_id": "containerID"}):
    container_id: str
    ifname: str = ""


class CniInterface(Struct, omit_defaults=True, rename={"socket_path": "socketPath", "pci_id": "pciID"}):
    name: str
    mac: str = ""
    sandbox: str = ""
    # CNI 1.1 additions
    mtu: int = 0
    socket_path: str = ""
    pci_id: str = ""


class CniRoute(Struct, omit_defaults=True):
    dst: str
    gw: str = ""
    # CNI 1.1 additions
    mtu: int = 0
    advmss: int = 0
    priority: int = 0
    table: int | None = None
    scope: int | None = None


class CniDns(Struct, omit_defaults=True):
    nameservers: list[str] | None = None
    domain: str = ""
    search: list[str] | None = None
    options: list[str] | None = None


class IpConfigV03(Struct, omit_defaults=True):
    """An ``ips`` entry of CNI 0.3.0, 0.3.1 and 0.4.0 results: carries ``version``."""

    version: Literal["4", "6"]
    address: str
    gateway: str = ""
    # index into ``interfaces``; 0 is a valid index, so absent is None
    interface: int | None = None


class IpConfigV1(Struct, omit_defaults=True):
    """An ``ips`` entry of CNI 1.x results: the family is implied by the address."""

    address: str
    gateway: str = ""
    interface: int | None = None


class ResultV03(Struct, omit_defaults=True, rename={"cni_version": "cniVersion"}):
    """A CNI result in the 0.3.0 / 0.3.1 / 0.4.0 format."""

    cni_version: str
    interfaces: list[CniInterface] | None = None
    ips: list[IpConfigV03] | None = None
    routes: list[CniRoute] | None = None
    dns: CniDns | None = None


class ResultV1(Struct, omit_defaults=True, rename={"cni_version": "cniVersion"}):
    """A CNI result in the 1.0.0 / 1.1.0 format."""

    cni_version: str
    interfaces: list[CniInterface] | None = None
    ips: list[IpConfigV1] | None = None
    routes: list[CniRoute] | None = None
    dns: CniDns | None = None


class CniErrorReply(Struct, omit_defaults=True, rename={"cni_version": "cniVersion"}):
    """The error document a CNI plugin prints on stdout before exiting non-zero."""

    cni_version: str
    code: int
    msg: str
    details: str = ""


class VersionReply(
    Struct, rename={"cni_version": "cniVersion", "supported_versions": "supportedVersions"}
):
    cni_version: str
    supported_versions: list[str]


# --------------------------------------------------------------------------------------------
# admission.k8s.io/v1 AdmissionReview


class GroupVersionKind(Struct):
    group: str = ""
    version: str = ""
    kind: str = ""


class GroupVersionResource(Struct):
    group: str = ""
    version: str = ""
    resource: str = ""


class UserInfo(Struct, omit_defaults=True):
    username: str = ""
    uid: str = ""
    groups: list[str] | None = None
    extra: dict[str, list[str]] | None = None


class AdmissionRequest(Struct, omit_defaults=True, rename="camel"):
    uid: str
    kind: GroupVersionKind = field(default_factory=GroupVersionKind)
    resource: GroupVersionResource = field(default_factory=GroupVersionResource)
    sub_resource: str = ""
    request_kind: GroupVersionKind | None = None
    request_resource: GroupVersionResource | None = None
    request_sub_resource: str = ""
    name: str = ""
    namespace: str = ""
    # CREATE, UPDATE, DELETE or CONNECT
    operation: str = ""
    user_info: UserInfo = field(default_factory=UserInfo)
    # The objects stay raw: the webhook decodes them by kind.
    object: Raw | UnsetType = UNSET
    old_object: Raw | UnsetType = UNSET
    dry_run: bool | None = None
    options: Raw | UnsetType = UNSET


class StatusDetails(Struct, omit_defaults=True):
    name: str = ""
    group: str = ""
    kind: str = ""
    uid: str = ""
    causes: list[dict[str, str]] | None = None
    retry_after_seconds: int = field(default=0, name="retryAfterSeconds")


class Status(Struct, omit_defaults=True, rename={"api_version": "apiVersion"}):
    """meta/v1 Status: API errors, and an admission denial's reason."""

    api_version: str = ""
    kind: str = ""
    metadata: dict[str, str] | None = None
    status: str = ""
    message: str = ""
    reason: str = ""
    details: StatusDetails | None = None
    code: int = 0


class AdmissionResponse(Struct, omit_defaults=True, rename="camel"):
    uid: str
    allowed: bool
    status: Status | None = None
    # base64 of a JSON Patch document
    patch: str = ""
    patch_type: str = ""
    audit_annotations: dict[str, str] | None = None
    warnings: list[str] | None = None


class AdmissionReview(Struct, rename={"api_version": "apiVersion"}):
    api_version: str = "admission.k8s.io/v1"
    kind: str = "AdmissionReview"
    request: AdmissionRequest | UnsetType = UNSET
    response: AdmissionResponse | UnsetType = UNSET

