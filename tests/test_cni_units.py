"""The pure parts of the CNI plugin: CNI_ARGS, config decoding, naming, pre-checks, error
aggregation, network-status entries, GC's orphan choice and CHECK's comparison."""

import json
import time
from typing import Any

import msgspec
import pytest

from danm import attach, cni, detach, endpoints, netlink, networkstatus, verify
from danm.types import (
    DanmEp,
    EndpointInterface,
    EndpointSpec,
    InterfaceRequest,
    Network,
    NetworkOptions,
    NetworkSpec,
    ObjectMeta,
)


def make_network(name: str = "net", kind: str = "DanmNet", **options: Any) -> Network:
    return Network(
        kind=kind,
        metadata=ObjectMeta(name=name, namespace="" if kind == "ClusterNetwork" else "ns"),
        spec=NetworkSpec(network_id=name, network_type="ipvlan", options=msgspec.convert(options, NetworkOptions)),
    )


def attachment(index: int = 0, ifname: str = "eth0", parent: str = "eth9", kind: str = "DanmNet", **options: Any) -> attach.Attachment:
    return attach.Attachment(index, InterfaceRequest(network="net", ip="dynamic"), make_network("net", kind, **options), ifname, parent)


# -- CNI_ARGS and the environment


def test_cni_args_are_parsed_with_libcni_semantics() -> None:
    args = cni.parse_cni_args(
        "IgnoreUnknown=1;K8S_POD_NAMESPACE=ns;K8S_POD_NAME=p;K8S_POD_INFRA_CONTAINER_ID=abc;K8S_POD_UID=u;X=y",
        "other",
        True,
    )
    assert (args.namespace, args.name, args.infra_container_id, args.uid) == ("ns", "p", "abc", "u")
    # the runtime's container ID stands in when the infra ID is absent
    assert cni.parse_cni_args("K8S_POD_NAMESPACE=ns;K8S_POD_NAME=p", "cid", True).infra_container_id == "cid"


@pytest.mark.parametrize(
    ("text", "culprit"),
    [
        ("K8S_POD_NAMESPACE=ns;K8S_POD_NAME=p;X=1", "X"),
        ("K8S_POD_NAMESPACE=ns;K8S_POD_NAME=p;IgnoreUnknown=0;X=1", "X"),
        ("K8S_POD_NAMESPACE=ns", "K8S_POD_NAME"),
        ("K8S_POD_NAMESPACE=ns;K8S_POD_NAME=p;broken", "broken"),
        ("K8S_POD_NAMESPACE=ns;K8S_POD_NAMESPACE=other;K8S_POD_NAME=p", "K8S_POD_NAMESPACE"),
    ],
)
def test_bad_cni_args_are_code_4_and_named(text: str, culprit: str) -> None:
    with pytest.raises(cni.CniFailure) as caught:
        cni.parse_cni_args(text, "cid", True)
    assert caught.value.code == cni.ERR_INVALID_ENVIRONMENT and culprit in caught.value.msg


def test_environment_requirements_per_verb() -> None:
    base = {"CNI_CONTAINERID": "c", "CNI_IFNAME": "eth0", "CNI_NETNS": "/run/netns/x", "CNI_PATH": "/bin"}
    assert cni.parse_env({"CNI_COMMAND": "ADD", **base}).netns == "/run/netns/x"
    # DEL may come without a netns (the sandbox is gone); ADD may not
    cni.parse_env({"CNI_COMMAND": "DEL", **base, "CNI_NETNS": ""})
    for missing in ("CNI_CONTAINERID", "CNI_IFNAME", "CNI_NETNS"):
        with pytest.raises(cni.CniFailure) as caught:
            cni.parse_env({"CNI_COMMAND": "ADD", **{k: v for k, v in base.items() if k != missing}})
        assert caught.value.code == 4 and missing in caught.value.msg
    with pytest.raises(cni.CniFailure, match="absolute"):
        cni.parse_env({"CNI_COMMAND": "ADD", **base, "CNI_NETNS": "relative"})


@pytest.mark.parametrize(
    ("document", "code", "culprit"),
    [
        (b"{not json", cni.ERR_DECODE, "decode"),
        (b'{"cniVersion": 1}', cni.ERR_INVALID_CONFIG, "cniVersion"),
        (b'{"interfaceDeadlineSeconds": 0}', cni.ERR_INVALID_CONFIG, "interfaceDeadlineSeconds"),
        (b'{"namingScheme": "odd"}', cni.ERR_INVALID_CONFIG, "namingScheme"),
        (b'{"logLevel": "loud"}', cni.ERR_INVALID_CONFIG, "logLevel"),
    ],
)
def test_config_errors(document: bytes, code: int, culprit: str) -> None:
    with pytest.raises(cni.CniFailure) as caught:
        cni.decode_config(document)
    assert caught.value.code == code and culprit in caught.value.msg


def test_config_defaults_and_unknown_keys() -> None:
    conf = cni.decode_config(b'{"cniVersion": "1.1.0", "type": "danm", "some_comment": "x"}')
    assert conf.log_file == "/var/log/danm.log" and conf.interface_deadline == 30.0
    assert conf.del_retry_seconds == 600.0 and conf.cni_dir == "/etc/cni/net.d"


def test_every_error_code_has_one_meaning() -> None:
    codes = {name: value for name, value in vars(cni).items() if name.startswith("ERR_")}
    assert len(set(codes.values())) == len(codes)
    assert codes["ERR_TRY_AGAIN"] == 11 and codes["ERR_NETWORK_NOT_FOUND"] == 100


# -- naming and pre-checks


@pytest.mark.parametrize(
    ("sequence", "prefix", "scheme", "name"),
    [(0, "ext", "", "eth0"), (1, "ext", "", "ext1"), (2, "", "", "eth2"), (3, "ext", "legacy", "ext"), (0, "x", "legacy", "eth0")],
)
def test_interface_names(sequence: int, prefix: str, scheme: str, name: str) -> None:
    assert attach.interface_name(sequence, prefix, scheme) == name


def test_checks_before_anything_is_created() -> None:
    long = attachment(1, "averyverylongname1")
    with pytest.raises(cni.CniFailure) as caught:
        attach.check_attachment(long, "ns")
    assert caught.value.code == 7 and "averyverylongname1" in caught.value.msg and "entry 1" in caught.value.msg
    denied = attachment()
    denied.network.spec.allowed_tenants = ["other"]
    with pytest.raises(cni.CniFailure) as caught:
        attach.check_attachment(denied, "ns")
    assert caught.value.code == 102 and "AllowedTenants" in caught.value.msg
    routed = attachment()
    routed.request.proutes = {"10.1.0.0/16": "10.0.0.1"}
    with pytest.raises(cni.CniFailure, match="rt_tables") as caught:
        attach.check_attachment(routed, "ns")
    assert caught.value.code == 7
    unsafe = attach.Attachment(0, InterfaceRequest(network="net"), make_network(), "eth0", "eth9")
    unsafe.network.spec.network_type = "../../bin/sh"
    unsafe.backend = "static"
    with pytest.raises(cni.CniFailure) as caught:
        attach.check_attachment(unsafe, "ns")
    assert caught.value.code == 7 and "NetworkType" in caught.value.msg
    # the type is compared case-insensitively (§11.11)
    upper = attachment()
    upper.network.spec.network_type = "IPVLAN"
    attach.check_attachment(upper, "ns")
    twice = [attachment(0, "eth0"), attachment(1, "ext"), attachment(2, "ext")]
    with pytest.raises(cni.CniFailure, match="also given") as caught:
        attach.check_names(twice)


def test_parent_devices() -> None:
    assert netlink.parent_device("ens1", "internal", 0, 600) == "vx_internal"
    assert netlink.parent_device("ens1", "external", 300, 0) == "external.300"
    assert netlink.parent_device("ens1", "x", 0, 0) == "ens1"


def test_aggregated_error_lists_failed_networks_in_entry_order() -> None:
    second, first = attachment(2, "eth2"), attachment(0, "eth0")
    second.error = cni.CniFailure(103, "no parent")
    first.error = cni.CniFailure(101, "exhausted")
    failure = attach.aggregate([second, first])
    assert failure.code == 101
    assert failure.msg.splitlines()[0].endswith("exhausted") and "entry 2" in failure.msg.splitlines()[1]


def test_annotation_key_is_exact_with_the_legacy_group_accepted() -> None:
    from danm.types import Pod

    pod = Pod(metadata=ObjectMeta(annotations={"x.danm.io/interfaces": "[]", "danm.k8s.io/interfaces": "[1]"}))
    assert attach.annotation_value(pod) == "[1]"
    pod.metadata.annotations = {"danm.io/interfaces": "[2]", "danm.k8s.io/interfaces": "[1]"}
    assert attach.annotation_value(pod) == "[2]"


# -- DanmEps, network-status, GC, CHECK


def endpoint(cid: str = "c1", created: str = "2020-01-01T00:00:00Z", **interface: object) -> DanmEp:
    return DanmEp(
        metadata=ObjectMeta(name="ep", namespace="ns", creation_timestamp=created),
        spec=EndpointSpec(
            network_name="net",
            container_id=cid,
            interface=msgspec.convert({"Name": "eth1", **interface}, EndpointInterface),
        ),
    )


def test_identity_labels_fit_label_values_and_cannot_be_forged() -> None:
    cid = "f" * 64
    labels = endpoints.endpoint_labels({"app": "x", "danm.io/cid-hash": "forged"}, endpoints.identity_labels(cid, "n" * 70, "uid-1"))
    assert labels["app"] == "x" and labels["danm.io/cid-hash"] == endpoints.container_hash(cid)
    assert all(len(value) <= 63 for value in labels.values())
    assert labels["danm.io/node"].startswith("sha-") and labels["danm.io/pod-uid"] == "uid-1"


def test_network_ref_of_legacy_endpoints() -> None:
    ep = endpoint()
    assert endpoints.network_ref(ep) == ("DanmNet", "ns", "net")  # apiType "" is a DanmNet
    ep.spec.api_type = "ClusterNetwork"
    assert endpoints.network_ref(ep) == ("ClusterNetwork", "", "net")


def test_network_status_entries() -> None:
    first = attachment(1, "ext1", cidr="10.0.0.0/24", routes={"0.0.0.0/0": "10.0.0.1", "10.9.0.0/16": "10.0.0.2"})
    first.ip4, first.ip6 = "10.0.0.5/24", "none"
    first.link = netlink.LinkInfo("ext1", 3, "aa:bb:cc:dd:ee:ff", 1500, [])
    second = attachment(0, "eth0", kind="ClusterNetwork")
    entries = json.loads(msgspec.json.encode(networkstatus.entries([first, second])))
    assert entries == [
        {"name": "net", "interface": "eth0", "default": True, "dns": {}},
        {"name": "ns/net", "interface": "ext1", "ips": ["10.0.0.5"], "mac": "aa:bb:cc:dd:ee:ff", "mtu": 1500, "dns": {}, "gateway": ["10.0.0.1"]},
    ]


def test_gc_matches_container_ids_only_and_spares_the_newest() -> None:
    now = time.time()
    recent = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now))
    found = [endpoint("live"), endpoint("gone"), endpoint("gone-new", recent), endpoint("")]
    assert [ep.spec.container_id for ep in detach.orphans(found, {"live"}, now)] == ["gone"]


def test_check_reports_each_difference() -> None:
    ep = endpoint(Address="10.0.0.5/24", proutes={"10.7.0.0/16": "10.0.0.1"})
    net = make_network(cidr="10.0.0.0/24", routes={"10.9.0.0/16": "10.0.0.2"}, rt_tables=7)
    assert verify.differences(ep, net, None) == ["interface eth1 does not exist"]
    observed = netlink.ObservedLink("eth1", 2, "aa:bb:cc:dd:ee:ff", True, set(), set(), set())
    problems = verify.differences(ep, net, observed)
    assert problems == [
        "interface eth1 lacks address 10.0.0.5/24",
        "interface eth1 lacks route 10.9.0.0/16 via 10.0.0.2 in table 254",
        "interface eth1 lacks route 10.7.0.0/16 via 10.0.0.1 in table 7",
        f"policy rule from 10.0.0.5/32 lookup 7 priority {netlink.rule_priority(7)} is missing",
    ]
    healthy = netlink.ObservedLink(
        "eth1",
        2,
        "aa:bb:cc:dd:ee:ff",
        True,
        {"10.0.0.5/24"},
        {(254, "10.9.0.0/16", "10.0.0.2"), (7, "10.7.0.0/16", "10.0.0.1")},
        {(netlink.rule_priority(7), "10.0.0.5/32", 7)},
    )
    assert verify.differences(ep, net, healthy) == []


@pytest.mark.parametrize(
    ("verb", "version", "allowed"),
    [("CHECK", "0.3.1", False), ("CHECK", "0.4.0", True), ("STATUS", "1.0.0", False), ("GC", "1.1.0", True), ("ADD", "0.3.0", True)],
)
def test_verbs_newer_than_the_config_are_refused(verb: str, version: str, allowed: bool) -> None:
    if allowed:
        cni.check_verb_version(verb, version)
        return
    with pytest.raises(cni.CniFailure) as caught:
        cni.check_verb_version(verb, version)
    assert caught.value.code == cni.ERR_INCOMPATIBLE_VERSION and verb in caught.value.msg


def test_gc_judges_only_its_own_cni_network_and_legacy_endpoints_by_their_pod() -> None:
    mine = endpoint()
    mine.metadata.labels = endpoints.identity_labels("c1", "node-a", "u", "meta_cni")
    assert detach.judged_by(mine, "meta_cni") == "yes"
    assert detach.judged_by(mine, "other-net") == "no"
    legacy = endpoint()
    assert detach.judged_by(legacy, "meta_cni") == "pod"
    odd = endpoint()
    odd.metadata.labels = endpoints.identity_labels("c1", "node-a", "u", "not a label value!")
    assert detach.judged_by(odd, "not a label value!") == "yes"
