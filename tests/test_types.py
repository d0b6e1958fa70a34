"""The wire model: fixtures in the original's wire format decode and re-encode unchanged."""

import json
from typing import Any

import msgspec
import pytest

from danm import types
from danm.patch import apply_json_patch, apply_merge_patch, struct_patch
from testlib import FIXTURES, canonical, load_fixture

ROUND_TRIPS: list[tuple[str, type[Any]]] = [
    ("danmnet.json", types.Network),
    ("danmnet_l2.json", types.Network),
    ("tenantnetwork.json", types.Network),
    ("clusternetwork.json", types.Network),
    ("tenantconfig.json", types.TenantConfig),
    ("danmep.json", types.DanmEp),
    ("danmep_sriov.json", types.DanmEp),
    ("nad_plugin.json", types.NetworkAttachmentDefinition),
    ("nad_conflist.json", types.NetworkAttachmentDefinition),
    ("pod.json", types.Pod),
    ("cni_config.json", types.DanmNetConf),
    ("cni_result_0.3.1.json", types.ResultV03),
    ("cni_result_0.4.0.json", types.ResultV03),
    ("cni_result_1.0.0.json", types.ResultV1),
    ("cni_result_1.1.0.json", types.ResultV1),
    ("cni_error.json", types.CniErrorReply),
    ("cni_version.json", types.VersionReply),
    ("annotation.json", list[types.InterfaceRequest]),
    ("admissionreview_request.json", types.AdmissionReview),
    ("admissionreview_response.json", types.AdmissionReview),
    ("admissionreview_denied.json", types.AdmissionReview),
]


def test_every_fixture_is_covered() -> None:
    covered = {name for name, _ in ROUND_TRIPS}
    assert covered == {path.name for path in FIXTURES.glob("*.json")}


@pytest.mark.parametrize(("name", "model"), ROUND_TRIPS, ids=[name for name, _ in ROUND_TRIPS])
def test_fixture_round_trip(name: str, model: type[Any]) -> None:
    raw = (FIXTURES / name).read_bytes()
    decoded = msgspec.json.decode(raw, type=model)
    encoded = json.loads(msgspec.json.encode(decoded))
    original = json.loads(raw)
    if model is types.DanmNetConf:
        # danm only reads its config; encoding it spells out the defaults of danm's own keys
        defaults = json.loads(msgspec.json.encode(types.DanmNetConf()))
        assert {key: encoded[key] for key in encoded if key not in original} == {
            key: defaults[key] for key in encoded if key not in original
        }
        encoded = {key: encoded[key] for key in original}
    assert canonical(encoded) == canonical(original)


def test_network_fields_decode_to_python_names() -> None:
    net = msgspec.json.decode((FIXTURES / "danmnet.json").read_bytes(), type=types.Network)
    assert net.kind == "DanmNet"
    assert net.spec.network_id == "internal"
    assert net.spec.options.cidr == "10.100.20.0/24"
    assert net.spec.options.allocation_pool == types.AllocationPool(
        start="10.100.20.10", end="10.100.20.200", last_ip="10.100.20.12/24"
    )
    assert net.spec.options.routes == {"10.60.1.0/24": "10.100.20.1"}
    assert net.spec.allowed_tenants is None


def test_absent_and_empty_stay_distinct() -> None:
    """The webhook treats AllowedTenants: [] and routes: {} differently from absent keys."""
    with_empties = b'{"spec":{"AllowedTenants":[],"Options":{"routes":{}}}}'
    net = msgspec.json.decode(with_empties, type=types.Network)
    assert net.spec.allowed_tenants == [] and net.spec.options.routes == {}
    again = json.loads(msgspec.json.encode(net))
    assert again["spec"]["AllowedTenants"] == [] and again["spec"]["Options"]["routes"] == {}
    bare = msgspec.json.decode(b'{"spec":{}}', type=types.Network)
    assert bare.spec.allowed_tenants is None and bare.spec.options.routes is None


def test_pools_are_written_whole_as_the_original_did() -> None:
    options = types.NetworkOptions(
        allocation_pool=types.AllocationPool(), allocation_pool_v6=types.AllocationPoolV6()
    )
    assert json.loads(msgspec.json.encode(options)) == {
        "allocation_pool": {"start": "", "end": "", "lastIp": ""},
        "allocation_pool_v6": {"start": "", "end": "", "lastIp": "", "cidr": ""},
    }


def test_new_danmep_is_written_like_the_original() -> None:
    ep = types.DanmEp(
        metadata=types.ObjectMeta(name="e1", namespace="default"),
        spec=types.EndpointSpec(
            network_name="default",
            network_type="flannel",
            endpoint_id="e1",
            interface=types.EndpointInterface(name="eth0", address="10.0.0.2/24"),
            pod="p",
        ),
    )
    written = json.loads(msgspec.json.encode(ep))
    assert written["apiVersion"] == "danm.io/v1" and written["kind"] == "DanmEp"
    assert written["spec"]["apiType"] == ""
    assert written["spec"]["Interface"] == {
        "Name": "eth0",
        "Address": "10.0.0.2/24",
        "AddressIPv6": "",
        "MacAddress": "",
        "proutes": None,
        "proutes6": None,
    }
    # omitempty in the original: absent when unset
    assert not {"Host", "PodUID", "CID", "netns"} & set(written["spec"])


def test_tenantconfig_alloc_is_626_bytes() -> None:
    import base64

    config = msgspec.json.decode((FIXTURES / "tenantconfig.json").read_bytes(), type=types.TenantConfig)
    assert isinstance(config.host_devices, list)
    assert len(base64.b64decode(config.host_devices[0].alloc)) == 626  # 5001 bits, VNI 0..5000
    assert config.network_ids == {"flannel": "flannel", "sriov": "sriov_a"}


def test_cni_config_ignores_runtime_and_comment_keys() -> None:
    conf = {
        "cniVersion": "1.1.0",
        "cniVersions": ["0.3.1", "1.1.0"],
        "name": "meta_cni",
        "type": "danm",
        "name_comment": "Mandatory parameter, but can be anything",
        "runtimeConfig": {"portMappings": [{"hostPort": 8080, "containerPort": 80, "protocol": "tcp"}]},
        "args": {"cni": {"labels": []}},
        "capabilities": {"portMappings": True},
        "prevResult": {"cniVersion": "1.1.0", "ips": []},
        "someFutureKey": 1,
    }
    decoded = msgspec.json.decode(json.dumps(conf), type=types.DanmNetConf)
    assert decoded.cni_versions == ["0.3.1", "1.1.0"]
    assert decoded.cni_dir == "/etc/cni/net.d"  # the original's default
    assert decoded.capabilities == {"portMappings": True}
    assert isinstance(decoded.runtime_config, dict) and "portMappings" in decoded.runtime_config


def test_result_versions_differ_in_ip_version_key() -> None:
    old = msgspec.json.decode((FIXTURES / "cni_result_0.3.1.json").read_bytes(), type=types.ResultV03)
    assert old.ips is not None and old.ips[2].version == "6"
    with pytest.raises(msgspec.ValidationError, match="version"):
        msgspec.json.decode(b'{"cniVersion":"0.3.1","ips":[{"address":"10.0.0.1/24"}]}', type=types.ResultV03)
    new = msgspec.json.decode((FIXTURES / "cni_result_1.1.0.json").read_bytes(), type=types.ResultV1)
    assert new.interfaces is not None and new.interfaces[1].socket_path == "/var/run/vhost/sock0"


def test_interface_index_zero_is_kept() -> None:
    ip = types.IpConfigV1(address="10.0.0.2/24", interface=0)
    assert json.loads(msgspec.json.encode(ip)) == {"address": "10.0.0.2/24", "interface": 0}


def test_admission_review_keeps_objects_raw() -> None:
    review = msgspec.json.decode(
        (FIXTURES / "admissionreview_request.json").read_bytes(), type=types.AdmissionReview
    )
    assert isinstance(review.request, types.AdmissionRequest)
    assert review.request.operation == "CREATE"
    assert isinstance(review.request.object, msgspec.Raw)
    net = msgspec.json.decode(review.request.object, type=types.Network)
    assert net.kind == "TenantNetwork" and net.spec.options.cidr == "192.168.10.0/26"


# --- The write policy: changes go out as merge patches, so nothing danm does not model is lost.

FOREIGN_METADATA: dict[str, Any] = {
    "labels": {"team": "core"},
    "annotations": {"owner.example.com/contact": "noc"},
    "finalizers": ["example.com/protect"],
    "ownerReferences": [{"apiVersion": "v1", "kind": "ConfigMap", "name": "cm", "uid": "u-1"}],
}


def reserve_address(net: types.Network) -> types.Network:
    """What an IPAM reservation changes: the bitmap and lastIp."""
    pool = types.AllocationPool(start="10.100.20.10", end="10.100.20.200", last_ip="10.100.20.13/24")
    options = msgspec.structs.replace(
        net.spec.options, alloc="gAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAE=", allocation_pool=pool
    )
    return msgspec.structs.replace(net, spec=msgspec.structs.replace(net.spec, options=options))


def reserve_vni(config: types.TenantConfig) -> types.TenantConfig:
    assert isinstance(config.host_devices, list)
    first = msgspec.structs.replace(config.host_devices[0], alloc="AAAA")
    return msgspec.structs.replace(config, host_devices=[first, *config.host_devices[1:]])


def relabel_endpoint(ep: types.DanmEp) -> types.DanmEp:
    metadata = msgspec.structs.replace(ep.metadata, labels={"app": "moved"})
    return msgspec.structs.replace(ep, metadata=metadata)


def annotate_pod(pod: types.Pod) -> types.Pod:
    annotations = dict(pod.metadata.annotations or {}, **{"k8s.v1.cni.cncf.io/network-status": "[]"})
    return msgspec.structs.replace(pod, metadata=msgspec.structs.replace(pod.metadata, annotations=annotations))


UPDATES: list[tuple[str, type[Any], Any, dict[str, Any]]] = [
    (
        "danmnet.json",
        types.Network,
        reserve_address,
        {"spec": {"Options": {"futureOption": {"x": 1}}, "futureSpecKey": True}, "status": {"phase": "Ok"}},
    ),
    (
        "tenantconfig.json",
        types.TenantConfig,
        reserve_vni,
        {"futureTopLevel": {"mtu": 9000}},
    ),
    (
        "danmep.json",
        types.DanmEp,
        relabel_endpoint,
        {"spec": {"Interface": {"futureIfaceKey": 1}, "futureSpecKey": "x"}},
    ),
    (
        "pod.json",
        types.Pod,
        annotate_pod,
        {"spec": {"containers": [{"name": "c", "image": "busybox"}]}, "status": {"phase": "Running"}},
    ),
]


@pytest.mark.parametrize(("name", "model", "change", "foreign"), UPDATES, ids=[u[0] for u in UPDATES])
def test_updates_keep_every_field_danm_does_not_model(
    name: str, model: type[Any], change: Any, foreign: dict[str, Any]
) -> None:
    stored: dict[str, Any] = apply_merge_patch(load_fixture(name), {"metadata": FOREIGN_METADATA, **foreign})
    seen = msgspec.convert(stored, model)
    wanted = change(seen)
    operations = struct_patch(seen, wanted)
    assert operations[0] == {
        "op": "replace",
        "path": "/metadata/resourceVersion",
        "value": stored["metadata"]["resourceVersion"],
    }
    after = apply_json_patch(stored, operations)
    assert msgspec.convert(after, model) == wanted  # the change landed
    for path, value in leaves({"metadata": FOREIGN_METADATA, **foreign}):
        if path[:2] != ("metadata", "labels") or name != "danmep.json":  # the relabel's own target
            assert lookup(after, path) == value, path


def leaves(document: Any, prefix: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], Any]]:
    if isinstance(document, dict) and document:
        return [leaf for key, value in document.items() for leaf in leaves(value, (*prefix, key))]
    if isinstance(document, list) and document:
        return [leaf for index, value in enumerate(document) for leaf in leaves(value, (*prefix, str(index)))]
    return [(prefix, document)]


def lookup(document: Any, path: tuple[str, ...]) -> Any:
    for part in path:
        document = document[int(part)] if isinstance(document, list) else document[part]
    return document


def test_unknown_keys_inside_list_items_survive() -> None:
    """A VNI reservation changes one profile of a list; its unmodelled keys stay."""
    stored = load_fixture("tenantconfig.json")
    stored["hostDevices"][0]["futureProfileKey"] = {"mtu": 9000}
    seen = msgspec.convert(stored, types.TenantConfig)
    after = apply_json_patch(stored, struct_patch(seen, reserve_vni(seen)))
    assert after["hostDevices"][0]["alloc"] == "AAAA"
    assert after["hostDevices"][0]["futureProfileKey"] == {"mtu": 9000}


def test_network_patch_is_minimal() -> None:
    seen = msgspec.convert(load_fixture("danmnet.json"), types.Network)
    assert struct_patch(seen, reserve_address(seen)) == [
        {"op": "replace", "path": "/metadata/resourceVersion", "value": "48213"},
        {"op": "add", "path": "/spec/Options/allocation_pool/lastIp", "value": "10.100.20.13/24"},
        {"op": "add", "path": "/spec/Options/alloc", "value": "gAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAE="},
    ]


def test_writing_whole_structs_would_lose_fields() -> None:
    """Why the policy exists: a decoded Struct drops what it does not model."""
    stored = apply_merge_patch(load_fixture("danmnet.json"), {"spec": {"futureSpecKey": True}, "status": {"a": 1}})
    whole = json.loads(msgspec.json.encode(msgspec.convert(stored, types.Network)))
    assert "futureSpecKey" not in whole["spec"] and "status" not in whole


def test_no_change_means_no_patch() -> None:
    seen = msgspec.convert(load_fixture("danmnet.json"), types.Network)
    assert struct_patch(seen, msgspec.structs.replace(seen)) == []
