"""The resource types the embedded API server serves, and its discovery documents.

Built-in types are declared here; custom resources are added from CustomResourceDefinitions as
they are established. Discovery (``/api``, ``/apis``, ``/api/v1``, ``/apis/G/V``) is generated
from what is registered, so clients such as kubectl and the dynamic client find exactly what is
served.
"""

import re
from typing import Any, Final

from danm.apistore import JsonObject, Resource, StatusError

VERBS: Final = ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"]
VERSION_INFO: Final = {
    "major": "1",
    "minor": "36",
    "gitVersion": "v1.36.0-danm",
    "gitCommit": "danm",
    "gitTreeState": "clean",
    "buildDate": "2024-04-17T00:00:00Z",
    "goVersion": "go1.22.2",
    "compiler": "gc",
    "platform": "linux/amd64",
}

POD_FIELDS: Final = (
    "metadata.name",
    "metadata.namespace",
    "spec.nodeName",
    "spec.restartPolicy",
    "spec.schedulerName",
    "spec.serviceAccountName",
    "spec.hostNetwork",
    "status.phase",
    "status.podIP",
    "status.nominatedNodeName",
)


def builtin_resources() -> list[Resource]:
    pods = Resource(
        "", "v1", "Pod", "pods", True, short_names=["po"], categories=["all"],
        status_subresource=True, unconditional_update=True,
    )
    pods.field_labels = POD_FIELDS
    namespaces = Resource(
        "", "v1", "Namespace", "namespaces", False, short_names=["ns"],
        status_subresource=True, unconditional_update=True, name_is_dns_label=True,
    )
    namespaces.field_labels = ("metadata.name", "status.phase")
    secrets = Resource("", "v1", "Secret", "secrets", True, unconditional_update=True)
    secrets.field_labels = ("metadata.name", "metadata.namespace", "type")
    events = Resource("", "v1", "Event", "events", True, short_names=["ev"], unconditional_update=True)
    events.field_labels = (
        "metadata.name", "metadata.namespace", "involvedObject.kind", "involvedObject.namespace",
        "involvedObject.name", "involvedObject.uid", "involvedObject.apiVersion",
        "involvedObject.resourceVersion", "involvedObject.fieldPath", "reason", "source", "type",
    )
    nodes = Resource("", "v1", "Node", "nodes", False, short_names=["no"], status_subresource=True, unconditional_update=True)
    nodes.field_labels = ("metadata.name", "spec.unschedulable")
    return [
        namespaces,
        pods,
        Resource(
            "", "v1", "Service", "services", True, short_names=["svc"], categories=["all"],
            status_subresource=True, unconditional_update=True, name_is_dns_label=True,
        ),
        Resource("", "v1", "Endpoints", "endpoints", True, short_names=["ep"], unconditional_update=True),
        nodes,
        events,
        Resource("", "v1", "ConfigMap", "configmaps", True, short_names=["cm"], unconditional_update=True),
        secrets,
        Resource("", "v1", "ServiceAccount", "serviceaccounts", True, short_names=["sa"], unconditional_update=True),
        Resource(
            "discovery.k8s.io", "v1", "EndpointSlice", "endpointslices", True,
            unconditional_update=True, generation=True,
        ),
        Resource("coordination.k8s.io", "v1", "Lease", "leases", True),
        Resource(
            "admissionregistration.k8s.io", "v1", "MutatingWebhookConfiguration",
            "mutatingwebhookconfigurations", False, generation=True, unconditional_update=True,
        ),
        Resource(
            "admissionregistration.k8s.io", "v1", "ValidatingWebhookConfiguration",
            "validatingwebhookconfigurations", False, generation=True, unconditional_update=True,
        ),
        Resource(
            "apiextensions.k8s.io", "v1", "CustomResourceDefinition", "customresourcedefinitions", False,
            short_names=["crd", "crds"], status_subresource=True, generation=True,
        ),
        Resource(
            "apps", "v1", "Deployment", "deployments", True, short_names=["deploy"], categories=["all"],
            status_subresource=True, unconditional_update=True, generation=True,
        ),
        Resource(
            "apps", "v1", "DaemonSet", "daemonsets", True, short_names=["ds"], categories=["all"],
            status_subresource=True, unconditional_update=True, generation=True,
        ),
        Resource("rbac.authorization.k8s.io", "v1", "Role", "roles", True, unconditional_update=True, name_is_path_segment=True),
        Resource(
            "rbac.authorization.k8s.io", "v1", "RoleBinding", "rolebindings", True,
            unconditional_update=True, name_is_path_segment=True,
        ),
        Resource(
            "rbac.authorization.k8s.io", "v1", "ClusterRole", "clusterroles", False,
            unconditional_update=True, name_is_path_segment=True,
        ),
        Resource(
            "rbac.authorization.k8s.io", "v1", "ClusterRoleBinding", "clusterrolebindings", False,
            unconditional_update=True, name_is_path_segment=True,
        ),
        Resource(
            "policy", "v1", "PodDisruptionBudget", "poddisruptionbudgets", True, short_names=["pdb"],
            status_subresource=True, unconditional_update=True, generation=True,
        ),
    ]


class Registry:
    """Every served resource, by (group, version, plural); changes as CRDs come and go."""

    def __init__(self) -> None:
        self.resources: dict[tuple[str, str, str], Resource] = {}
        for resource in builtin_resources():
            self.add(resource)

    def add(self, resource: Resource) -> None:
        self.resources[(resource.group, resource.version, resource.plural)] = resource

    def remove_group_resource(self, group: str, plural: str) -> None:
        for key in [key for key in self.resources if key[0] == group and key[2] == plural]:
            del self.resources[key]

    def find(self, group: str, version: str, plural: str) -> Resource | None:
        return self.resources.get((group, version, plural))

    def by_kind(self, group: str, kind: str) -> Resource | None:
        for resource in self.resources.values():
            if resource.group == group and resource.kind == kind:
                return resource
        return None

    def group_versions(self) -> dict[str, list[str]]:
        """group -> served versions, preferred (highest) first; the core group is ""."""
        found: dict[str, list[str]] = {}
        for group, version, _ in self.resources:
            versions = found.setdefault(group, [])
            if version not in versions:
                versions.append(version)
        for versions in found.values():
            versions.sort(key=version_priority, reverse=True)
        return found

    # -- discovery documents

    def api_versions(self, server_address: str) -> JsonObject:
        return {
            "kind": "APIVersions",
            "versions": ["v1"],
            "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}],
        }

    def api_group(self, group: str) -> JsonObject:
        versions = self.group_versions().get(group)
        if not versions or not group:
            raise StatusError(404, "NotFound", "the server could not find the requested resource")
        entries = [{"groupVersion": f"{group}/{version}", "version": version} for version in versions]
        return {
            "kind": "APIGroup",
            "apiVersion": "v1",
            "name": group,
            "versions": entries,
            "preferredVersion": dict(entries[0]),
        }

    def api_group_list(self) -> JsonObject:
        groups = [self.api_group(group) for group in sorted(self.group_versions()) if group]
        for group in groups:
            del group["kind"], group["apiVersion"]
        return {"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}

    def resource_list(self, group: str, version: str) -> JsonObject:
        entries: list[JsonObject] = []
        for (resource_group, resource_version, _), resource in sorted(self.resources.items()):
            if (resource_group, resource_version) != (group, version):
                continue
            verbs = [verb for verb in VERBS if not (verb == "deletecollection" and resource.plural == "namespaces")]
            entry: dict[str, Any] = {
                "name": resource.plural,
                "singularName": resource.singular,
                "namespaced": resource.namespaced,
                "kind": resource.kind,
                "verbs": verbs,
            }
            if resource.short_names:
                entry["shortNames"] = resource.short_names
            if resource.categories:
                entry["categories"] = resource.categories
            entries.append(entry)
            if resource.status_subresource:
                entries.append(
                    {
                        "name": resource.plural + "/status",
                        "singularName": "",
                        "namespaced": resource.namespaced,
                        "kind": resource.kind,
                        "verbs": ["get", "patch", "update"],
                    }
                )
        if not entries:
            raise StatusError(404, "NotFound", "the server could not find the requested resource")
        return {
            "kind": "APIResourceList",
            "apiVersion": "v1",
            "groupVersion": f"{group}/{version}" if group else version,
            "resources": entries,
        }


def version_priority(version: str) -> tuple[int, int, int]:
    """Kubernetes version order: GA > beta > alpha, then by number (v1 > v1beta2 > v1alpha1)."""
    match = re.fullmatch(r"v(\d+)(?:(alpha|beta)(\d+))?", version)
    if match is None:
        return (-1, 0, 0)
    stability = {"alpha": 0, "beta": 1}.get(match.group(2) or "", 2)
    return (stability, int(match.group(1)), int(match.group(3) or 0))


def resources_from_crd(crd: JsonObject) -> list[Resource]:
    """The served versions of a CRD as resources (with schema and printer columns)."""
    spec = crd.get("spec") or {}
    names = spec.get("names") or {}
    made: list[Resource] = []
    for version in spec.get("versions") or []:
        if not version.get("served"):
            continue
        subresources = version.get("subresources") or {}
        resource = Resource(
            spec.get("group", ""),
            version.get("name", ""),
            names.get("kind", ""),
            names.get("plural", ""),
            spec.get("scope") == "Namespaced",
            singular=names.get("singular", ""),
            short_names=list(names.get("shortNames") or []),
            categories=list(names.get("categories") or []),
            list_kind=names.get("listKind", ""),
            status_subresource="status" in subresources,
            generation=True,
        )
        schema = (version.get("schema") or {}).get("openAPIV3Schema")
        resource.schema = schema if isinstance(schema, dict) else None
        resource.printer_columns = list(version.get("additionalPrinterColumns") or [])
        made.append(resource)
    return made


def crd_status(crd: JsonObject, now: str) -> JsonObject:
    """What the server writes into a CRD's status once it is served."""
    spec = crd.get("spec") or {}
    names = dict(spec.get("names") or {})
    names.setdefault("singular", str(names.get("kind", "")).lower())
    names.setdefault("listKind", f"{names.get('kind', '')}List")
    storage = [v.get("name", "") for v in spec.get("versions") or [] if v.get("storage")]
    return {
        "conditions": [
            {
                "type": "NamesAccepted",
                "status": "True",
                "reason": "NoConflicts",
                "message": "no conflicts found",
                "lastTransitionTime": now,
            },
            {
                "type": "Established",
                "status": "True",
                "reason": "InitialNamesAccepted",
                "message": "the initial names have been accepted",
                "lastTransitionTime": now,
            },
        ],
        "acceptedNames": names,
        "storedVersions": storage,
    }
