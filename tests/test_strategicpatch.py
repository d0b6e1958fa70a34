"""Strategic merge patches: the kubectl patch documentation, upstream's apply cases, and errors."""

import copy
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from danm.patch import PatchError, apply_merge_patch
from danm.strategicpatch import (
    StrategicMergePatchError,
    apply_strategic_merge_patch,
    list_merge_key,
)


def patched(document: Any, patch: Any, kind: str) -> Any:
    """Apply, and check that neither input changed and the result shares nothing with them."""
    document_before = copy.deepcopy(document)
    patch_before = copy.deepcopy(patch)
    result = apply_strategic_merge_patch(document, patch, kind)
    assert document == document_before
    assert patch == patch_before
    shared = _containers(document) | _containers(patch)
    assert not shared & _containers(result), "the result shares a dict or list with an input"
    return result


def _containers(value: Any) -> set[int]:
    found: set[int] = set()
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            found.add(id(item))
            stack.extend(item.values())
        elif isinstance(item, list):
            found.add(id(item))
            stack.extend(item)
    return found


def pod(**spec: Any) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "ns"}, "spec": spec}


def containers_of(document: Any) -> list[Any]:
    return [container["name"] for container in document["spec"]["containers"]]


# --- https://kubernetes.io/docs/tasks/manage-kubernetes-objects/update-api-object-kubectl-patch/

PATCH_DEMO: dict[str, Any] = {
    "apiVersion": "apps/v1",
    "kind": "Deployment",
    "metadata": {"name": "patch-demo"},
    "spec": {
        "replicas": 2,
        "selector": {"matchLabels": {"app": "nginx"}},
        "template": {
            "metadata": {"labels": {"app": "nginx"}},
            "spec": {
                "containers": [{"name": "patch-demo-ctr", "image": "nginx"}],
                "tolerations": [{"effect": "NoSchedule", "key": "dedicated", "value": "test-team"}],
            },
        },
    },
}


def test_docs_containers_list_is_merged() -> None:
    patch = {"spec": {"template": {"spec": {"containers": [{"name": "patch-demo-ctr-2", "image": "redis"}]}}}}
    result = patched(PATCH_DEMO, patch, "Deployment")
    # As the documentation shows it: the new container first, the old one kept.
    assert result["spec"]["template"]["spec"]["containers"] == [
        {"name": "patch-demo-ctr-2", "image": "redis"},
        {"name": "patch-demo-ctr", "image": "nginx"},
    ]
    expected = copy.deepcopy(PATCH_DEMO)
    expected["spec"]["template"]["spec"]["containers"] = result["spec"]["template"]["spec"]["containers"]
    assert result == expected


def test_docs_tolerations_list_is_replaced() -> None:
    patch = {
        "spec": {"template": {"spec": {"tolerations": [{"effect": "NoSchedule", "key": "disktype", "value": "ssd"}]}}}
    }
    result = patched(PATCH_DEMO, patch, "Deployment")
    assert result["spec"]["template"]["spec"]["tolerations"] == [
        {"effect": "NoSchedule", "key": "disktype", "value": "ssd"}
    ]
    assert containers_of(result["spec"]["template"]) == ["patch-demo-ctr"]


def test_docs_merge_patch_of_the_same_body_replaces_containers() -> None:
    """The documentation's contrast: a JSON merge patch replaces the list the strategic one merges."""
    patch = {"spec": {"template": {"spec": {"containers": [{"name": "patch-demo-ctr-3", "image": "gcr.io/x:2.0"}]}}}}
    merge = apply_merge_patch(PATCH_DEMO, patch)
    strategic = patched(PATCH_DEMO, patch, "Deployment")
    assert containers_of(merge["spec"]["template"]) == ["patch-demo-ctr-3"]
    assert containers_of(strategic["spec"]["template"]) == ["patch-demo-ctr-3", "patch-demo-ctr"]


RETAINKEYS_DEMO: dict[str, Any] = {
    "apiVersion": "apps/v1",
    "kind": "Deployment",
    "metadata": {"name": "retainkeys-demo"},
    "spec": {
        "selector": {"matchLabels": {"app": "nginx"}},
        "strategy": {"rollingUpdate": {"maxSurge": "30%"}, "type": "RollingUpdate"},
        "template": {
            "metadata": {"labels": {"app": "nginx"}},
            "spec": {"containers": [{"name": "retainkeys-demo-ctr", "image": "nginx"}]},
        },
    },
}


def test_docs_retain_keys_clears_the_other_strategy_fields() -> None:
    without = patched(RETAINKEYS_DEMO, {"spec": {"strategy": {"type": "Recreate"}}}, "Deployment")
    # what the API server then refuses: rollingUpdate may not be specified for Recreate
    assert without["spec"]["strategy"] == {"rollingUpdate": {"maxSurge": "30%"}, "type": "Recreate"}

    patch = {"spec": {"strategy": {"$retainKeys": ["type"], "type": "Recreate"}}}
    result = patched(RETAINKEYS_DEMO, patch, "Deployment")
    assert result["spec"]["strategy"] == {"type": "Recreate"}
    assert result["spec"]["template"] == RETAINKEYS_DEMO["spec"]["template"]


def test_retain_keys_keeps_listed_fields_and_merges_them() -> None:
    document = {"spec": {"strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}}}}
    patch = {"spec": {"strategy": {"$retainKeys": ["type", "rollingUpdate"], "rollingUpdate": {"maxSurge": 2}}}}
    result = patched(document, patch, "Deployment")
    assert result["spec"]["strategy"] == {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 2, "maxUnavailable": 0}}


# --- Lists merged by key


def test_env_merges_by_name() -> None:
    document = pod(containers=[{"name": "app", "image": "a:1", "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}]}])
    patch = {"spec": {"containers": [{"name": "app", "env": [{"name": "B", "value": "20"}, {"name": "C", "value": "3"}]}]}}
    result = patched(document, patch, "Pod")
    (container,) = result["spec"]["containers"]
    assert container["image"] == "a:1"
    assert container["env"] == [{"name": "A", "value": "1"}, {"name": "B", "value": "20"}, {"name": "C", "value": "3"}]


def test_env_element_keys_are_merged_and_null_deletes_one() -> None:
    document = pod(containers=[{"name": "app", "env": [{"name": "A", "valueFrom": {"fieldRef": {"fieldPath": "x"}}}]}])
    patch = {"spec": {"containers": [{"name": "app", "env": [{"name": "A", "valueFrom": None, "value": "v"}]}]}}
    result = patched(document, patch, "Pod")
    assert result["spec"]["containers"][0]["env"] == [{"name": "A", "value": "v"}]


def test_container_ports_merge_by_container_port() -> None:
    document = pod(containers=[{"name": "app", "ports": [{"containerPort": 80, "protocol": "TCP"}, {"containerPort": 443}]}])
    patch = {"spec": {"containers": [{"name": "app", "ports": [{"containerPort": 443, "name": "https"}, {"containerPort": 8080}]}]}}
    result = patched(document, patch, "Pod")
    assert result["spec"]["containers"][0]["ports"] == [
        {"containerPort": 80, "protocol": "TCP"},
        {"containerPort": 443, "name": "https"},
        {"containerPort": 8080},
    ]


def test_merge_key_values_compare_as_json_values() -> None:
    """The string "80" is not the number 80: the element is new."""
    document = pod(containers=[{"name": "app", "ports": [{"containerPort": 80}]}])
    patch = {"spec": {"containers": [{"name": "app", "ports": [{"containerPort": "80", "name": "x"}]}]}}
    result = patched(document, patch, "Pod")
    assert result["spec"]["containers"][0]["ports"] == [{"containerPort": "80", "name": "x"}, {"containerPort": 80}]


def test_volume_mounts_merge_by_mount_path_and_volumes_by_name() -> None:
    document = pod(
        containers=[{"name": "app", "volumeMounts": [{"name": "data", "mountPath": "/data"}]}],
        volumes=[{"name": "data", "emptyDir": {}}],
    )
    patch = {
        "spec": {
            "containers": [{"name": "app", "volumeMounts": [{"mountPath": "/data", "readOnly": True}]}],
            "volumes": [{"name": "cfg", "configMap": {"name": "c"}}],
        }
    }
    result = patched(document, patch, "Pod")
    assert result["spec"]["containers"][0]["volumeMounts"] == [{"name": "data", "mountPath": "/data", "readOnly": True}]
    assert result["spec"]["volumes"] == [{"name": "cfg", "configMap": {"name": "c"}}, {"name": "data", "emptyDir": {}}]


def test_other_pod_spec_lists_with_keys() -> None:
    document = pod(
        containers=[{"name": "app"}],
        initContainers=[{"name": "init", "image": "i:1"}],
        imagePullSecrets=[{"name": "one"}],
        hostAliases=[{"ip": "10.0.0.1", "hostnames": ["a"]}],
        topologySpreadConstraints=[{"topologyKey": "zone", "maxSkew": 1}],
    )
    patch = {
        "spec": {
            "initContainers": [{"name": "init", "image": "i:2"}],
            "imagePullSecrets": [{"name": "two"}],
            "hostAliases": [{"ip": "10.0.0.1", "hostnames": ["b"]}],
            "topologySpreadConstraints": [{"topologyKey": "zone", "maxSkew": 2}],
        }
    }
    result = patched(document, patch, "Pod")["spec"]
    assert result["initContainers"] == [{"name": "init", "image": "i:2"}]
    assert result["imagePullSecrets"] == [{"name": "two"}, {"name": "one"}]
    assert result["hostAliases"] == [{"ip": "10.0.0.1", "hostnames": ["b"]}]  # hostnames is atomic
    assert result["topologySpreadConstraints"] == [{"topologyKey": "zone", "maxSkew": 2}]


def test_patch_delete_removes_a_container_and_an_env_entry() -> None:
    document = pod(containers=[{"name": "a", "env": [{"name": "X"}, {"name": "Y"}]}, {"name": "b"}])
    patch = {
        "spec": {
            "containers": [
                {"name": "b", "$patch": "delete"},
                {"name": "a", "env": [{"name": "X", "$patch": "delete"}]},
                {"name": "missing", "$patch": "delete"},
            ]
        }
    }
    result = patched(document, patch, "Pod")
    assert result["spec"]["containers"] == [{"name": "a", "env": [{"name": "Y"}]}]


def test_patch_delete_removes_every_duplicate() -> None:
    document = pod(containers=[{"name": "1"}, {"name": "1"}, {"name": "2", "image": "a"}, {"name": "3"}, {"name": "3"}])
    patch = {"spec": {"containers": [{"name": "1", "$patch": "delete"}, {"name": "3", "$patch": "delete"}]}}
    assert patched(document, patch, "Pod")["spec"]["containers"] == [{"name": "2", "image": "a"}]


def test_patch_replace_in_a_list_replaces_the_list() -> None:
    document = pod(containers=[{"name": "a", "image": "a"}, {"name": "b"}])
    patch = {"spec": {"containers": [{"$patch": "replace"}, {"name": "c", "image": "c", "args": None}]}}
    assert patched(document, patch, "Pod")["spec"]["containers"] == [{"name": "c", "image": "c"}]
    emptied = patched(document, {"spec": {"containers": [{"$patch": "replace"}]}}, "Pod")
    assert emptied["spec"]["containers"] == []


def test_service_ports_merge_by_port() -> None:
    service = {
        "kind": "Service",
        "metadata": {"name": "s"},
        "spec": {"ports": [{"port": 80, "targetPort": 8080}, {"port": 53, "protocol": "UDP"}], "externalIPs": ["1.1.1.1"]},
    }
    patch = {"spec": {"ports": [{"port": 80, "targetPort": 9090}], "externalIPs": ["2.2.2.2"]}}
    result = patched(service, patch, "Service")
    assert result["spec"]["ports"] == [{"port": 80, "targetPort": 9090}, {"port": 53, "protocol": "UDP"}]
    assert result["spec"]["externalIPs"] == ["2.2.2.2"]


def test_owner_references_merge_by_uid() -> None:
    document = {
        "metadata": {
            "name": "cm",
            "ownerReferences": [
                {"apiVersion": "v1", "kind": "Pod", "name": "a", "uid": "u1"},
                {"apiVersion": "v1", "kind": "Pod", "name": "b", "uid": "u2"},
            ],
        }
    }
    patch = {
        "metadata": {
            "ownerReferences": [
                {"uid": "u2", "controller": True},
                {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "rs", "uid": "u3"},
                {"uid": "u1", "$patch": "delete"},
            ]
        }
    }
    result = patched(document, patch, "ConfigMap")
    assert result["metadata"]["ownerReferences"] == [
        {"apiVersion": "v1", "kind": "Pod", "name": "b", "uid": "u2", "controller": True},
        {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "rs", "uid": "u3"},
    ]


def test_pod_conditions_merge_by_type() -> None:
    document = {
        "metadata": {"name": "p"},
        "status": {
            "phase": "Pending",
            "conditions": [{"type": "PodScheduled", "status": "True"}, {"type": "Ready", "status": "False"}],
            "podIPs": [{"ip": "10.0.0.5"}],
        },
    }
    patch = {
        "status": {
            "phase": "Running",
            "conditions": [{"type": "Ready", "status": "True", "lastTransitionTime": "2024-01-01T00:00:00Z"}],
            "podIPs": [{"ip": "fd00::5"}],
        }
    }
    result = patched(document, patch, "Pod")
    assert result["status"] == {
        "phase": "Running",
        "conditions": [
            {"type": "PodScheduled", "status": "True"},
            {"type": "Ready", "status": "True", "lastTransitionTime": "2024-01-01T00:00:00Z"},
        ],
        "podIPs": [{"ip": "fd00::5"}, {"ip": "10.0.0.5"}],
    }


def test_node_status_conditions_and_addresses_merge_by_type() -> None:
    node = {
        "metadata": {"name": "n"},
        "spec": {"podCIDRs": ["10.0.0.0/24"], "taints": [{"key": "a", "effect": "NoSchedule"}]},
        "status": {
            "addresses": [{"type": "InternalIP", "address": "192.168.0.2"}, {"type": "Hostname", "address": "n"}],
            "conditions": [{"type": "Ready", "status": "False"}, {"type": "MemoryPressure", "status": "False"}],
        },
    }
    patch = {
        "spec": {"podCIDRs": ["fd00::/64"], "taints": [{"key": "b", "effect": "NoExecute"}]},
        "status": {
            "addresses": [{"type": "InternalIP", "address": "192.168.0.3"}],
            "conditions": [{"type": "Ready", "status": "True"}],
        },
    }
    result = patched(node, patch, "Node")
    assert result["spec"] == {"podCIDRs": ["fd00::/64", "10.0.0.0/24"], "taints": [{"key": "b", "effect": "NoExecute"}]}
    assert result["status"]["addresses"] == [
        {"type": "InternalIP", "address": "192.168.0.3"},
        {"type": "Hostname", "address": "n"},
    ]
    assert result["status"]["conditions"] == [{"type": "Ready", "status": "True"}, {"type": "MemoryPressure", "status": "False"}]


@pytest.mark.parametrize(
    "kind",
    ["Deployment", "DaemonSet", "StatefulSet", "ReplicaSet", "Job", "ReplicationController", "Namespace",
     "PersistentVolumeClaim", "Service", "HorizontalPodAutoscaler"],
)
def test_status_conditions_merge_by_type(kind: str) -> None:
    document = {"status": {"conditions": [{"type": "A", "status": "True"}, {"type": "B", "status": "False"}]}}
    result = patched(document, {"status": {"conditions": [{"type": "B", "status": "True"}]}}, kind)
    assert result["status"]["conditions"] == [{"type": "A", "status": "True"}, {"type": "B", "status": "True"}]


def test_conditions_of_an_unknown_kind_are_replaced() -> None:
    document = {"status": {"conditions": [{"type": "A", "status": "True"}, {"type": "B", "status": "False"}]}}
    result = patched(document, {"status": {"conditions": [{"type": "B", "status": "True"}]}}, "Widget")
    assert result["status"]["conditions"] == [{"type": "B", "status": "True"}]


# --- Pod templates


def workload(kind: str) -> dict[str, Any]:
    template = {
        "metadata": {"labels": {"app": "x"}},
        "spec": {"containers": [{"name": "app", "image": "app:1", "env": [{"name": "A", "value": "1"}]}]},
    }
    if kind == "CronJob":
        return {"kind": kind, "spec": {"schedule": "* * * * *", "jobTemplate": {"spec": {"template": template}}}}
    return {"kind": kind, "spec": {"replicas": 1, "template": template}}


def template_patch(kind: str, template: dict[str, Any]) -> dict[str, Any]:
    if kind == "CronJob":
        return {"spec": {"jobTemplate": {"spec": {"template": template}}}}
    return {"spec": {"template": template}}


def template_of(kind: str, document: Any) -> Any:
    return document["spec"]["jobTemplate"]["spec"]["template"] if kind == "CronJob" else document["spec"]["template"]


@pytest.mark.parametrize(
    "kind", ["Deployment", "DaemonSet", "StatefulSet", "ReplicaSet", "Job", "ReplicationController", "CronJob"]
)
def test_pod_template_lists_merge(kind: str) -> None:
    patch = template_patch(
        kind,
        {
            "metadata": {"labels": {"version": "2"}},
            "spec": {
                "containers": [
                    {
                        "name": "app",
                        "image": "app:2",
                        "env": [{"name": "B", "value": "2"}],
                        "$setElementOrder/env": [{"name": "A"}, {"name": "B"}],
                    },
                    {"name": "sidecar", "image": "s:1"},
                ],
                "$setElementOrder/containers": [{"name": "app"}, {"name": "sidecar"}],
            },
        },
    )
    result = patched(workload(kind), patch, kind)
    template = template_of(kind, result)
    assert template["metadata"]["labels"] == {"app": "x", "version": "2"}
    assert template["spec"]["containers"] == [
        {"name": "app", "image": "app:2", "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}]},
        {"name": "sidecar", "image": "s:1"},
    ]


def test_pod_template_spec_lists_merge_in_pod_template() -> None:
    document = {"kind": "PodTemplate", "template": {"spec": {"containers": [{"name": "a"}]}}}
    result = patched(document, {"template": {"spec": {"containers": [{"name": "b"}]}}}, "PodTemplate")
    assert containers_of(result["template"]) == ["b", "a"]


def test_service_account_secrets_merge_by_name() -> None:
    document = {"metadata": {"name": "sa"}, "secrets": [{"name": "a"}], "imagePullSecrets": [{"name": "x"}]}
    patch = {"secrets": [{"name": "b"}], "imagePullSecrets": [{"name": "y"}]}
    result = patched(document, patch, "ServiceAccount")
    assert result["secrets"] == [{"name": "b"}, {"name": "a"}]
    assert result["imagePullSecrets"] == [{"name": "y"}]  # atomic on a ServiceAccount


def test_webhooks_merge_by_name() -> None:
    document = {"webhooks": [{"name": "a.example.com", "failurePolicy": "Fail"}, {"name": "b.example.com"}]}
    patch = {"webhooks": [{"name": "a.example.com", "failurePolicy": "Ignore"}]}
    result = patched(document, patch, "ValidatingWebhookConfiguration")
    assert result["webhooks"] == [{"name": "a.example.com", "failurePolicy": "Ignore"}, {"name": "b.example.com"}]


# --- Atomic lists and maps


def test_endpoints_subsets_are_replaced() -> None:
    endpoints = {
        "kind": "Endpoints",
        "metadata": {"name": "s"},
        "subsets": [{"addresses": [{"ip": "10.0.0.1"}], "ports": [{"port": 80}]}],
    }
    patch = {"subsets": [{"addresses": [{"ip": "10.0.0.2"}], "ports": [{"port": 80}]}]}
    assert patched(endpoints, patch, "Endpoints")["subsets"] == patch["subsets"]


def test_endpoint_slice_lists_are_replaced() -> None:
    document = {"addressType": "IPv4", "endpoints": [{"addresses": ["10.0.0.1"]}], "ports": [{"port": 80, "name": "a"}]}
    patch = {"endpoints": [{"addresses": ["10.0.0.2"], "conditions": {"ready": True}}], "ports": [{"port": 81, "name": "a"}]}
    result = patched(document, patch, "EndpointSlice")
    assert result == {"addressType": "IPv4", **patch}


def test_config_map_data_merges_and_null_deletes() -> None:
    document = {"metadata": {"name": "c", "labels": {"a": "1", "b": "2"}}, "data": {"x": "1", "y": "2"}}
    patch = {"metadata": {"labels": {"b": None, "c": "3"}}, "data": {"x": None, "z": "3"}}
    result = patched(document, patch, "ConfigMap")
    assert result == {"metadata": {"name": "c", "labels": {"a": "1", "c": "3"}}, "data": {"y": "2", "z": "3"}}


def test_values_new_to_the_object_lose_their_nulls() -> None:
    result = patched({"metadata": {"name": "c"}}, {"metadata": {"labels": {"a": None, "b": "1"}, "x": None}}, "ConfigMap")
    assert result == {"metadata": {"name": "c", "labels": {"b": "1"}}}


def test_type_change_replaces_the_value() -> None:
    result = patched({"data": {"a": "1"}, "spec": ["x"]}, {"data": "text", "spec": {"k": None, "v": 1}}, "Widget")
    assert result == {"data": "text", "spec": {"v": 1}}


def test_patch_replace_in_a_map_replaces_it() -> None:
    document = {"metadata": {"name": "c", "labels": {"a": "1", "b": "2"}}}
    patch = {"metadata": {"labels": {"$patch": "replace", "c": "3"}}}
    assert patched(document, patch, "ConfigMap")["metadata"]["labels"] == {"c": "3"}


def test_patch_delete_in_a_map_deletes_it() -> None:
    document = {"metadata": {"name": "c", "annotations": {"a": "1"}}, "data": {"k": "v"}}
    result = patched(document, {"metadata": {"annotations": {"$patch": "delete"}}, "data": {"$patch": "delete"}}, "ConfigMap")
    assert result == {"metadata": {"name": "c"}}
    assert patched({"a": 1}, {"new": {"$patch": "delete"}}, "ConfigMap") == {"a": 1}


def test_patch_directives_on_the_whole_object() -> None:
    document = {"metadata": {"name": "c"}, "data": {"k": "v"}}
    assert patched(document, {"$patch": "replace", "data": {"n": "1"}}, "ConfigMap") == {"data": {"n": "1"}}
    assert patched(document, {"$patch": "delete"}, "ConfigMap") == {}
    assert patched(document, {"$patch": "merge", "data": {"n": "1"}}, "ConfigMap") == {
        "metadata": {"name": "c"},
        "data": {"k": "v", "n": "1"},
    }


def test_directives_in_atomic_list_elements_are_applied() -> None:
    document = pod(tolerations=[{"key": "a"}])
    patch = {"spec": {"tolerations": [{"key": "b", "value": None}, {"key": "c", "$patch": "delete"}]}}
    assert patched(document, patch, "Pod")["spec"]["tolerations"] == [{"key": "b"}]


# --- Finalizers: a set of values


def test_finalizers_are_merged_as_a_set() -> None:
    document = {"metadata": {"name": "c", "finalizers": ["a", "b"]}}
    result = patched(document, {"metadata": {"finalizers": ["c", "a", "c"]}}, "ConfigMap")
    assert result["metadata"]["finalizers"] == ["c", "a", "b"]
    assert sorted(result["metadata"]["finalizers"]) == ["a", "b", "c"]


def test_finalizers_are_deleted_with_delete_from_primitive_list() -> None:
    document = {"metadata": {"name": "c", "finalizers": ["a", "b", "c", "b"]}}
    result = patched(document, {"metadata": {"$deleteFromPrimitiveList/finalizers": ["b", "x"]}}, "ConfigMap")
    assert result["metadata"]["finalizers"] == ["a", "c"]


def test_delete_from_primitive_list_never_creates_the_list() -> None:
    document = {"metadata": {"name": "c"}}
    assert patched(document, {"metadata": {"$deleteFromPrimitiveList/finalizers": ["a"]}}, "ConfigMap") == document


def test_delete_from_primitive_list_also_works_on_atomic_lists() -> None:
    document = pod(containers=[{"name": "a", "args": ["1", "2", "3"]}])
    patch = {"spec": {"containers": [{"name": "a", "$deleteFromPrimitiveList/args": ["2"]}]}}
    assert patched(document, patch, "Pod")["spec"]["containers"] == [{"name": "a", "args": ["1", "3"]}]


def test_add_and_delete_finalizers_in_one_patch() -> None:
    document = {"metadata": {"finalizers": ["a", "b", "c"]}}
    patch = {
        "metadata": {
            "$setElementOrder/finalizers": ["a", "b", "d"],
            "$deleteFromPrimitiveList/finalizers": ["c"],
            "finalizers": ["d"],
        }
    }
    assert patched(document, patch, "Namespace")["metadata"]["finalizers"] == ["a", "b", "d"]


def test_null_finalizers_delete_the_list() -> None:
    document = {"metadata": {"name": "c", "finalizers": ["a"]}}
    assert patched(document, {"metadata": {"finalizers": None}}, "ConfigMap") == {"metadata": {"name": "c"}}


# --- Element order: upstream's apply cases (strategicpatch/patch_test.go), on Pod containers
# for its "mergingList" (merge key name) and on finalizers for "mergingIntList".


def named(*names: str, **extra: Any) -> list[dict[str, Any]]:
    return [{"name": name, **extra.get(name, {})} for name in names]


ORDER_CASES: list[tuple[str, list[Any], dict[str, Any], list[Any]]] = [
    (
        "preserve the order from the patch",
        named("1", "2", "3", **{"2": {"image": "b"}}),
        {"containers": named("3", "1", "2", **{"3": {"image": "c"}, "1": {"image": "a"}, "2": {"args": ["x"]}})},
        named("3", "1", "2", **{"3": {"image": "c"}, "1": {"image": "a"}, "2": {"image": "b", "args": ["x"]}}),
    ),
    (
        "preserve the order from the patch 2",
        named("1", "2", "3", **{"2": {"image": "b"}}),
        {"containers": named("3", "1", **{"3": {"image": "c"}, "1": {"image": "a"}})},
        named("2", "3", "1", **{"2": {"image": "b"}, "3": {"image": "c"}, "1": {"image": "a"}}),
    ),
    (
        "$setElementOrder names an element missing from the list",
        named("1", "3"),
        {
            "$setElementOrder/containers": named("3", "2", "1"),
            "containers": named("3", "1", **{"3": {"image": "3"}, "1": {"image": "1"}}),
        },
        named("3", "1", **{"3": {"image": "3"}, "1": {"image": "1"}}),
    ),
    (
        "merge lists of maps",
        named("1", "2", **{"1": {"args": ["a"]}, "2": {"image": "2", "args": ["b"]}}),
        {
            "$setElementOrder/containers": named("4", "1", "2", "3"),
            "containers": named("4", "3", **{"4": {"image": "4"}, "3": {"image": "3"}}),
        },
        named("4", "1", "2", "3", **{"4": {"image": "4"}, "1": {"args": ["a"]}, "2": {"image": "2", "args": ["b"]}, "3": {"image": "3"}}),
    ),
    (
        "add field to map in merging list with conflict",
        named("1", "3", **{"1": {"args": ["a"]}, "3": {"image": "2", "args": ["b"]}}),
        {
            "$setElementOrder/containers": named("1", "2"),
            "containers": named("1", "2", **{"1": {"image": "1"}, "2": {"image": "2"}}),
        },
        named("1", "2", "3", **{"1": {"args": ["a"], "image": "1"}, "2": {"image": "2"}, "3": {"image": "2", "args": ["b"]}}),
    ),
    (
        "delete map from merging list",
        named("1", "2", **{"2": {"args": ["b"]}}),
        {"$setElementOrder/containers": named("2"), "containers": [{"name": "1", "$patch": "delete"}]},
        named("2", **{"2": {"args": ["b"]}}),
    ),
    (
        "delete missing map from merging list with conflict",
        named("3", **{"3": {"args": ["a"]}}),
        {"$setElementOrder/containers": named("2"), "containers": [{"name": "2"}, {"name": "1", "$patch": "delete"}]},
        named("2", "3", **{"3": {"args": ["a"]}}),
    ),
    (
        "add map and delete map from merging list",
        named("1", "2", "4", **{"2": {"args": ["b"]}, "4": {"args": ["c"]}}),
        {"$setElementOrder/containers": named("2", "3"), "containers": [{"name": "3"}, {"name": "1", "$patch": "delete"}]},
        named("2", "4", "3", **{"2": {"args": ["b"]}, "4": {"args": ["c"]}}),
    ),
    (
        "add map and delete map from merging list with conflict",
        named("1", "4", **{"1": {"args": ["a"]}, "4": {"args": ["c"]}}),
        {
            "$setElementOrder/containers": named("2", "3"),
            "containers": [{"name": "2"}, {"name": "3"}, {"name": "1", "$patch": "delete"}],
        },
        named("4", "2", "3", **{"4": {"args": ["c"]}}),
    ),
    (
        "nested patch merge with empty list",
        named("hello2"),
        {
            "$setElementOrder/containers": named("hello", "doesntexist"),
            "containers": [{"name": "hello"}, {"name": "doesntexist", "$patch": "delete"}],
        },
        named("hello", "hello2"),
    ),
    (
        "reorder only",
        named("a", "b", "c"),
        {"$setElementOrder/containers": named("c", "a", "b")},
        named("c", "a", "b"),
    ),
]


@pytest.mark.parametrize(("original", "patch", "expected"), [case[1:] for case in ORDER_CASES], ids=[case[0] for case in ORDER_CASES])
def test_upstream_element_order_cases(original: list[Any], patch: dict[str, Any], expected: list[Any]) -> None:
    assert patched(pod(containers=original), {"spec": patch}, "Pod")["spec"]["containers"] == expected


VALUE_ORDER_CASES: list[tuple[list[str], dict[str, Any], list[str]]] = [
    (["1", "2"], {"finalizers": ["2", "3"]}, ["1", "2", "3"]),  # "unique scalars when merging lists"
    (["1", "2", "3"], {"finalizers": ["3", "1", "2"]}, ["3", "1", "2"]),
    (["1", "2", "3"], {"finalizers": ["3", "1"]}, ["2", "3", "1"]),
    (["1", "3"], {"$setElementOrder/finalizers": ["3", "2", "1"]}, ["3", "1"]),
    (["1", "2", "3", "4"], {"$setElementOrder/finalizers": ["1", "2"], "$deleteFromPrimitiveList/finalizers": ["3"]}, ["1", "2", "4"]),
    (["1", "2", "3", "3", "4"], {"$setElementOrder/finalizers": ["1", "2"], "$deleteFromPrimitiveList/finalizers": ["3"]}, ["1", "2", "4"]),
]


@pytest.mark.parametrize(("original", "patch", "expected"), VALUE_ORDER_CASES)
def test_upstream_value_list_cases(original: list[str], patch: dict[str, Any], expected: list[str]) -> None:
    result = patched({"metadata": {"finalizers": original}}, {"metadata": patch}, "ConfigMap")
    assert result["metadata"]["finalizers"] == expected


def test_set_element_order_of_an_atomic_list_is_ignored() -> None:
    document = pod(tolerations=[{"key": "a"}, {"key": "b"}])
    patch = {"spec": {"$setElementOrder/tolerations": [{"key": "b"}], "tolerations": [{"key": "c"}]}}
    assert patched(document, patch, "Pod")["spec"]["tolerations"] == [{"key": "c"}]


def test_set_element_order_with_the_list_deleted() -> None:
    document = pod(containers=[{"name": "a"}], volumes=[{"name": "v"}])
    patch: dict[str, Any] = {"spec": {"$setElementOrder/volumes": [], "volumes": None}}
    assert "volumes" not in patched(document, patch, "Pod")["spec"]


def test_kubectl_apply_style_patch() -> None:
    """What kubectl apply sends after a container was added to and an env var removed from a manifest."""
    live = pod(
        containers=[
            {"name": "app", "image": "app:1", "env": [{"name": "A", "value": "1"}, {"name": "OLD", "value": "x"}]},
            {"name": "injected", "image": "mesh:1"},
        ]
    )
    patch = {
        "metadata": {"annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{}"}},
        "spec": {
            "$setElementOrder/containers": [{"name": "app"}, {"name": "logger"}],
            "containers": [
                {
                    "$setElementOrder/env": [{"name": "A"}],
                    "env": [{"name": "OLD", "$patch": "delete"}],
                    "name": "app",
                },
                {"image": "logger:1", "name": "logger"},
            ],
        },
    }
    result = patched(live, patch, "Pod")
    assert result["metadata"]["annotations"] == {"kubectl.kubernetes.io/last-applied-configuration": "{}"}
    assert result["spec"]["containers"] == [
        {"name": "app", "image": "app:1", "env": [{"name": "A", "value": "1"}]},
        {"name": "logger", "image": "logger:1"},
        {"name": "injected", "image": "mesh:1"},
    ]


# --- Errors


ERROR_CASES: list[tuple[str, Any, Any, str, int, str]] = [
    ("not an object", {}, ["a"], "Pod", 400, "must be a JSON object, not array"),
    ("null body", {}, None, "Pod", 400, "must be a JSON object, not null"),
    (
        "element without merge key",
        pod(containers=[{"name": "a"}]),
        {"spec": {"containers": [{"image": "nginx:1.25"}]}},
        "Pod",
        500,
        'spec.containers: map: {"image":"nginx:1.25"} does not contain declared merge key: name',
    ),
    (
        "delete element without merge key",
        pod(containers=[{"name": "a"}]),
        {"spec": {"containers": [{"$patch": "delete"}]}},
        "Pod",
        500,
        "does not contain declared merge key: name",
    ),
    (
        "new list element without merge key",
        {"metadata": {"name": "x"}},
        {"metadata": {"ownerReferences": [{"name": "owner"}]}},
        "ConfigMap",
        500,
        "metadata.ownerReferences: map: {\"name\":\"owner\"} does not contain declared merge key: uid",
    ),
    ("unknown $patch in a map", {}, {"data": {"$patch": "remove"}}, "ConfigMap", 500, 'data: unknown patch type: "remove"'),
    ("non-string $patch", {}, {"$patch": 1}, "ConfigMap", 500, "unknown patch type: 1"),
    (
        "unknown $patch in a list element",
        pod(containers=[{"name": "a"}]),
        {"spec": {"containers": [{"name": "a", "$patch": "drop"}]}},
        "Pod",
        500,
        'spec.containers: unknown patch type: "drop"',
    ),
    (
        "$patch merge in a list element",
        pod(containers=[{"name": "a"}]),
        {"spec": {"containers": [{"name": "a", "$patch": "merge"}]}},
        "Pod",
        500,
        "merging lists cannot yet be specified in the patch",
    ),
    ("$retainKeys not a list", {"spec": {}}, {"spec": {"$retainKeys": "type"}}, "Deployment", 400, "invalid patch format of retainKeys"),
    (
        "$retainKeys missing a patched key",
        {"spec": {"strategy": {}}},
        {"spec": {"strategy": {"$retainKeys": ["type"], "rollingUpdate": {"maxSurge": 1}}}},
        "Deployment",
        400,
        "the patch sets 'rollingUpdate'",
    ),
    (
        "$deleteFromPrimitiveList not a list",
        {"metadata": {"finalizers": ["a"]}},
        {"metadata": {"$deleteFromPrimitiveList/finalizers": "a"}},
        "ConfigMap",
        400,
        "invalid patch format of primitive list",
    ),
    (
        "$deleteFromPrimitiveList without a field",
        {},
        {"$deleteFromPrimitiveList/": ["a"]},
        "ConfigMap",
        400,
        "invalid patch format of primitive list",
    ),
    (
        "$deleteFromPrimitiveList on a list of objects",
        pod(containers=[{"name": "a"}]),
        {"spec": {"$deleteFromPrimitiveList/containers": ["a"]}},
        "Pod",
        500,
        "spec.containers: $deleteFromPrimitiveList/containers applies to a list of values",
    ),
    (
        "$setElementOrder not a list",
        pod(containers=[{"name": "a"}]),
        {"spec": {"$setElementOrder/containers": {"name": "a"}}},
        "Pod",
        400,
        "invalid patch format of setElementOrder list",
    ),
    (
        "$setElementOrder element without merge key",
        pod(containers=[{"name": "a"}]),
        {"spec": {"$setElementOrder/containers": [{"image": "a"}]}},
        "Pod",
        500,
        "does not contain declared merge key: name",
    ),
    (
        "$setElementOrder disagreeing with the patch list",
        pod(containers=named("1", "3", "2")),
        {"spec": {"$setElementOrder/containers": named("1", "2", "3"), "containers": named("3", "1")}},
        "Pod",
        500,
        "doesn't match $setElementOrder/containers list",
    ),
    (
        "$setElementOrder of values disagreeing with the patch list",
        {"metadata": {"finalizers": ["1", "3", "2"]}},
        {"metadata": {"$setElementOrder/finalizers": ["1", "2", "3"], "finalizers": ["3", "1"]}},
        "ConfigMap",
        500,
        "doesn't match",
    ),
    (
        "objects in a list of values",
        {"metadata": {"finalizers": ["a"]}},
        {"metadata": {"finalizers": [{"name": "b"}]}},
        "ConfigMap",
        500,
        "list element types are not identical: string and object",
    ),
    (
        "objects in a new list of values",
        {},
        {"metadata": {"finalizers": [{"$patch": "replace"}]}},
        "ConfigMap",
        500,
        "metadata.finalizers: cannot merge lists without merge key",
    ),
    (
        "list of lists",
        {"metadata": {"finalizers": ["a"]}},
        {"metadata": {"finalizers": [["b"]]}},
        "ConfigMap",
        422,
        "lists of lists are not supported",
    ),
    (
        "live element without merge key",
        pod(containers=[{"image": "broken"}]),
        {"spec": {"containers": [{"name": "a"}]}},
        "Pod",
        500,
        'map: {"image":"broken"} does not contain declared merge key: name',
    ),
]


@pytest.mark.parametrize(
    ("document", "patch", "kind", "status", "message"),
    [case[1:] for case in ERROR_CASES],
    ids=[case[0] for case in ERROR_CASES],
)
def test_invalid_patches_raise(document: Any, patch: Any, kind: str, status: int, message: str) -> None:
    with pytest.raises(StrategicMergePatchError) as raised:
        apply_strategic_merge_patch(document, patch, kind)
    assert isinstance(raised.value, PatchError)
    assert message in str(raised.value)
    assert raised.value.status == status
    assert not raised.value.test_failed


def test_a_document_that_is_not_an_object_is_refused() -> None:
    with pytest.raises(PatchError, match="not an object"):
        apply_strategic_merge_patch(["a"], {}, "Pod")


# --- The table of merge keys


@pytest.mark.parametrize(
    ("kind", "path", "key"),
    [
        ("Pod", "spec.containers", "name"),
        ("Pod", "spec.initContainers.ports", "containerPort"),
        ("Pod", "spec.ephemeralContainers.env", "name"),
        ("Pod", "spec.containers.volumeMounts", "mountPath"),
        ("Pod", "spec.containers.volumeDevices", "devicePath"),
        ("Pod", "spec.volumes", "name"),
        ("Pod", "spec.imagePullSecrets", "name"),
        ("Pod", "spec.hostAliases", "ip"),
        ("Pod", "spec.topologySpreadConstraints", "topologyKey"),
        ("Pod", "spec.tolerations", None),
        ("Pod", "spec.containers.args", None),
        ("Pod", "spec.containers.envFrom", None),
        ("Pod", "status.conditions", "type"),
        ("Pod", "status.containerStatuses", None),
        ("Deployment", "spec.template.spec.containers", "name"),
        ("DaemonSet", "spec.template.spec.volumes", "name"),
        ("StatefulSet", "spec.template.spec.containers.env", "name"),
        ("StatefulSet", "spec.volumeClaimTemplates", None),
        ("Job", "spec.template.spec.containers", "name"),
        ("CronJob", "spec.jobTemplate.spec.template.spec.containers.env", "name"),
        ("CronJob", "spec.template.spec.containers", None),
        ("Deployment", "spec.containers", None),
        ("Service", "spec.ports", "port"),
        ("Service", "spec.externalIPs", None),
        ("Node", "status.addresses", "type"),
        ("Node", "spec.podCIDRs", ""),
        ("Node", "spec.taints", None),
        ("Endpoints", "subsets", None),
        ("EndpointSlice", "endpoints", None),
        ("ConfigMap", "metadata.finalizers", ""),
        ("Secret", "metadata.ownerReferences", "uid"),
        ("ClusterRole", "rules", None),
        ("Lease", "metadata.managedFields", None),
        ("SomeCustomKind", "metadata.ownerReferences", "uid"),
    ],
)
def test_list_merge_keys(kind: str, path: str, key: str | None) -> None:
    assert list_merge_key(kind, path) == key


# --- Without directives or special lists, a strategic merge patch is a JSON merge patch

keys = st.sampled_from(["a", "b", "c", "data", "spec"])
scalars = st.none() | st.booleans() | st.integers(-3, 3) | st.text(max_size=2)
plain_lists = st.lists(st.booleans() | st.integers(-3, 3) | st.text(max_size=2), max_size=3)
values = st.recursive(scalars | plain_lists, lambda inner: st.dictionaries(keys, inner, max_size=3), max_leaves=12)
objects = st.dictionaries(keys, values, max_size=4)


@settings(max_examples=300, deadline=None)
@given(document=objects, patch=objects)
def test_equals_json_merge_patch_without_special_lists(document: dict[str, Any], patch: dict[str, Any]) -> None:
    document = json.loads(json.dumps(document))
    assert patched(document, patch, "ConfigMap") == apply_merge_patch(document, patch)
