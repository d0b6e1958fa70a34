"""Strategic merge patch (``application/strategic-merge-patch+json``) for built-in kinds.

The embedded API server applies these the way kube-apiserver does (apimachinery
``pkg/util/strategicpatch``, the apply half): a JSON merge patch (RFC 7386: objects merge
recursively, ``null`` deletes a key) except that some lists merge element by element instead of
being replaced whole. Which lists do is a property of the Go type behind each field (its
``patchStrategy`` and ``patchMergeKey`` tags); this module carries the part of that table that
matters for the kinds we serve. Custom resources have no such table: the server answers 415 for
them before getting here.

Lists merged per element, by merge key (``patchStrategy:"merge"``):

==========================================  ============================  ===============
type.field                                  where                         merge key
==========================================  ============================  ===============
ObjectMeta.ownerReferences                  ``metadata`` of every kind    ``uid``
PodSpec.containers, .initContainers,        ``spec`` (Pod),               ``name``
.ephemeralContainers, .volumes,             ``spec.template.spec``
.imagePullSecrets, .schedulingGates,        (Deployment, DaemonSet,
.resourceClaims                             StatefulSet, ReplicaSet, Job,
PodSpec.hostAliases                         ReplicationController,        ``ip``
PodSpec.topologySpreadConstraints           PodTemplate's ``template``),  ``topologyKey``
                                            ``spec.jobTemplate.spec.``
                                            ``template.spec`` (CronJob)
Container.ports                             each kind of container        ``containerPort``
Container.env                                                             ``name``
Container.volumeMounts                                                    ``mountPath``
Container.volumeDevices                                                   ``devicePath``
PodStatus.conditions                        Pod ``status``                ``type``
PodStatus.podIPs, .hostIPs                                                ``ip``
PodStatus.resourceClaimStatuses                                           ``name``
ServiceSpec.ports                           Service ``spec``              ``port``
NodeStatus.conditions, .addresses           Node ``status``               ``type``
<Kind>Status.conditions                     Service, Namespace,           ``type``
                                            PersistentVolumeClaim,
                                            Deployment, DaemonSet,
                                            StatefulSet, ReplicaSet, Job,
                                            ReplicationController,
                                            HorizontalPodAutoscaler
ServiceAccount.secrets                      top level                     ``name``
<Kind>WebhookConfiguration.webhooks         top level (Validating and     ``name``
                                            Mutating)
==========================================  ============================  ===============

Lists of values merged as a set (``patchStrategy:"merge"`` without a key): union keeping one of
each value, ``$deleteFromPrimitiveList/<field>`` removes values: ``ObjectMeta.finalizers``
(``metadata.finalizers`` of every kind) and ``NodeSpec.podCIDRs``.

Every other list is atomic and replaced whole, among them ``tolerations``, ``readinessGates``,
container ``args``/``command``/``envFrom``, ``containerStatuses``, Endpoints ``subsets``,
EndpointSlice ``endpoints`` and ``ports``, Service ``externalIPs``, Node ``taints``, RBAC
``rules``/``subjects``, StatefulSet ``volumeClaimTemplates``, ``managedFields``. Kinds with
no list of their own to merge (ConfigMap, Secret, Endpoints, EndpointSlice, Lease, Event, RBAC,
CRDs and any kind not listed) only have the ObjectMeta entries. ``Deployment.spec.strategy``
and ``PodSpec.volumes`` carry ``retainKeys`` upstream: it only tells clients when to send the
``$retainKeys`` directive, which is honoured wherever it appears.

Directives:

- ``"$patch": "replace"`` in an object replaces the object with the rest of the patch object;
  as an element of a merged list it replaces the list with the patch's other elements.
- ``"$patch": "delete"`` in an object deletes it (upstream leaves ``{}``, which Go decoding
  turns into an omitted or defaulted field); as a merged list element with its merge key it
  deletes the matching elements.
- ``"$patch": "merge"`` in an object is the default and changes nothing; in a list element
  kube-apiserver refuses it ("merging lists cannot yet be specified"), and so does this module.
- ``"$retainKeys": [...]`` keeps only the listed keys of the live object (after checking that
  the patch sets no other key), then merges.
- ``"$deleteFromPrimitiveList/<field>": [...]`` removes these values from a list of values.
- ``"$setElementOrder/<field>": [...]`` (sent by kubectl apply) orders a merged list: elements
  named in it come in its order, the others keep their place relative to the live list.

Element order follows upstream exactly: a merged list takes the patch's order for the elements it
names, new elements before the live ones they cannot be placed against (the kubectl patch
documentation shows the added container first), and ``$setElementOrder`` overrides both.

What is knowingly different from kube-apiserver: values that are not in the live object are
cleaned (nulls dropped, directives applied against nothing) instead of being stored with their
nulls and directive markers for Go decoding to drop; a ``$patch: replace`` object that is new is
kept (upstream drops it); ``$setElementOrder`` of a list that is replaced whole is ignored; and
list elements are compared with JSON equality (upstream tells int64 1 from float64 1.0).

Errors are :class:`StrategicMergePatchError` (a :class:`~danm.patch.PatchError`) whose
``status`` is the HTTP code kube-apiserver answers with: 400 for a body that is not an object
and for malformed ``$retainKeys``/``$deleteFromPrimitiveList``/``$setElementOrder`` values, 422
for lists of lists, 500 (reason Unknown, which kubectl prints as "Error from server: ...") for
the rest, such as a merged list element without its merge key or an unknown ``$patch`` value.
"""

import copy
import json
from typing import Any, Final, final

from danm.patch import JsonObject, PatchError

DIRECTIVE: Final = "$patch"
RETAIN_KEYS: Final = "$retainKeys"
DELETE_FROM_PRIMITIVE_LIST: Final = "$deleteFromPrimitiveList/"
SET_ELEMENT_ORDER: Final = "$setElementOrder/"

BAD_REQUEST: Final = 400
UNPROCESSABLE: Final = 422
INTERNAL: Final = 500


class StrategicMergePatchError(PatchError):
    """A strategic merge patch that cannot be applied; ``status`` is kube-apiserver's HTTP code."""

    def __init__(self, message: str, status: int = INTERNAL) -> None:
        super().__init__(message)
        self.status = status


# --- The patch metadata of the built-in types


@final
class _Field:
    """How one field patches.

    ``type_name`` names, in ``_TYPES``, the fields of the value (of each element, for a list);
    "" when none of them is special. ``merge`` marks a list merged per element: by
    ``merge_key`` for objects, as a set of values when ``merge_key`` is "".
    """

    def __init__(self, type_name: str, merge: bool, merge_key: str) -> None:
        self.type_name = type_name
        self.merge = merge
        self.merge_key = merge_key


def _object(type_name: str) -> _Field:
    return _Field(type_name, False, "")


def _keyed(merge_key: str, type_name: str = "") -> _Field:
    return _Field(type_name, True, merge_key)


def _value_set() -> _Field:
    return _Field("", True, "")


_PLAIN: Final = _Field("", False, "")
_NO_FIELDS: Final[dict[str, _Field]] = {}
_GENERIC: Final = "Object"

_TYPES: Final[dict[str, dict[str, _Field]]] = {
    "ObjectMeta": {"finalizers": _value_set(), "ownerReferences": _keyed("uid")},
    # Every kind: the root of kinds without special lists of their own.
    "Object": {"metadata": _object("ObjectMeta")},
    "PodSpec": {
        "containers": _keyed("name", "Container"),
        "initContainers": _keyed("name", "Container"),
        "ephemeralContainers": _keyed("name", "Container"),
        "volumes": _keyed("name"),  # merge,retainKeys
        "imagePullSecrets": _keyed("name"),
        "hostAliases": _keyed("ip"),
        "topologySpreadConstraints": _keyed("topologyKey"),
        "schedulingGates": _keyed("name"),
        "resourceClaims": _keyed("name"),  # merge,retainKeys
    },
    "Container": {
        "ports": _keyed("containerPort"),
        "env": _keyed("name"),
        "volumeMounts": _keyed("mountPath"),
        "volumeDevices": _keyed("devicePath"),
    },
    "PodStatus": {
        "conditions": _keyed("type"),
        "podIPs": _keyed("ip"),
        "hostIPs": _keyed("ip"),
        "resourceClaimStatuses": _keyed("name"),  # merge,retainKeys
    },
    "Pod": {
        "metadata": _object("ObjectMeta"),
        "spec": _object("PodSpec"),
        "status": _object("PodStatus"),
    },
    "PodTemplateSpec": {"metadata": _object("ObjectMeta"), "spec": _object("PodSpec")},
    "PodTemplate": {"metadata": _object("ObjectMeta"), "template": _object("PodTemplateSpec")},
    # The status of kinds whose only special status list is conditions.
    "ConditionsStatus": {"conditions": _keyed("type")},
    # The spec of ReplicationController, ReplicaSet, DaemonSet, StatefulSet and Job.
    "WorkloadSpec": {"template": _object("PodTemplateSpec")},
    "Workload": {
        "metadata": _object("ObjectMeta"),
        "spec": _object("WorkloadSpec"),
        "status": _object("ConditionsStatus"),
    },
    "DeploymentSpec": {
        "template": _object("PodTemplateSpec"),
        "strategy": _object(""),  # retainKeys
    },
    "Deployment": {
        "metadata": _object("ObjectMeta"),
        "spec": _object("DeploymentSpec"),
        "status": _object("ConditionsStatus"),
    },
    "JobTemplateSpec": {"metadata": _object("ObjectMeta"), "spec": _object("WorkloadSpec")},
    "CronJobSpec": {"jobTemplate": _object("JobTemplateSpec")},
    "CronJob": {"metadata": _object("ObjectMeta"), "spec": _object("CronJobSpec")},
    "ServiceSpec": {"ports": _keyed("port")},
    "Service": {
        "metadata": _object("ObjectMeta"),
        "spec": _object("ServiceSpec"),
        "status": _object("ConditionsStatus"),
    },
    "NodeSpec": {"podCIDRs": _value_set()},
    "NodeStatus": {"conditions": _keyed("type"), "addresses": _keyed("type")},
    "Node": {
        "metadata": _object("ObjectMeta"),
        "spec": _object("NodeSpec"),
        "status": _object("NodeStatus"),
    },
    # Namespace, PersistentVolumeClaim and HorizontalPodAutoscaler (autoscaling/v2).
    "WithConditions": {"metadata": _object("ObjectMeta"), "status": _object("ConditionsStatus")},
    "ServiceAccount": {"metadata": _object("ObjectMeta"), "secrets": _keyed("name")},
    "WebhookConfiguration": {"metadata": _object("ObjectMeta"), "webhooks": _keyed("name")},
}

# kind -> the entry of _TYPES for the whole object; other kinds use _GENERIC.
_KINDS: Final[dict[str, str]] = {
    "Pod": "Pod",
    "PodTemplate": "PodTemplate",
    "ReplicationController": "Workload",
    "ReplicaSet": "Workload",
    "DaemonSet": "Workload",
    "StatefulSet": "Workload",
    "Job": "Workload",
    "Deployment": "Deployment",
    "CronJob": "CronJob",
    "Service": "Service",
    "Node": "Node",
    "Namespace": "WithConditions",
    "PersistentVolumeClaim": "WithConditions",
    "HorizontalPodAutoscaler": "WithConditions",
    "ServiceAccount": "ServiceAccount",
    "ValidatingWebhookConfiguration": "WebhookConfiguration",
    "MutatingWebhookConfiguration": "WebhookConfiguration",
}


def list_merge_key(kind: str, path: str) -> str | None:
    """How the list at a dotted field path of ``kind`` patches (list indexes are left out).

    The merge key for a list merged per element, "" for a list merged as a set of values, and
    None for a list replaced whole or a path this module knows nothing special about. For
    example ``list_merge_key("CronJob", "spec.jobTemplate.spec.template.spec.containers.env")``
    is ``"name"``.
    """
    type_name = _KINDS.get(kind, _GENERIC)
    field = _PLAIN
    for part in path.split("."):
        field = _TYPES.get(type_name, _NO_FIELDS).get(part, _PLAIN)
        type_name = field.type_name
    return field.merge_key if field.merge else None


# --- Applying a patch


def apply_strategic_merge_patch(document: Any, patch: Any, kind: str) -> JsonObject:
    """Apply a strategic merge patch to a copy of ``document``, an object of built-in ``kind``.

    Neither argument is changed and the result shares nothing with them. Raises
    :class:`StrategicMergePatchError` for an invalid patch.
    """
    if not isinstance(patch, dict):
        raise StrategicMergePatchError(
            f"a strategic merge patch must be a JSON object, not {_json_type(patch)}", BAD_REQUEST
        )
    if not isinstance(document, dict):
        raise StrategicMergePatchError(f"cannot patch {_json_type(document)}: not an object")
    result = _merge_map(copy.deepcopy(document), patch, _KINDS.get(kind, _GENERIC), "")
    return {} if result is None else result


def _merge_map(original: JsonObject, patch: JsonObject, type_name: str, path: str) -> JsonObject | None:
    """Merge ``patch`` into ``original`` (changed in place); None when the patch deletes it."""
    if DIRECTIVE not in patch:
        return _merge_fields(original, patch, type_name, path)
    directive = patch[DIRECTIVE]
    if directive == "delete":
        return None
    rest = {key: value for key, value in patch.items() if key != DIRECTIVE}
    if directive == "replace":
        return _merge_fields({}, rest, type_name, path)
    if directive == "merge":
        return _merge_fields(original, rest, type_name, path)
    raise StrategicMergePatchError(
        f"{_at(path)}unknown patch type: {_compact(directive)} in map: {_compact(patch)}"
        " (expected $patch: replace, delete or merge)"
    )


def _merge_fields(original: JsonObject, patch: JsonObject, type_name: str, path: str) -> JsonObject:
    """Merge a patch object without a ``$patch`` directive into ``original``, in place."""
    fields = _TYPES.get(type_name, _NO_FIELDS)
    if RETAIN_KEYS in patch:
        _retain_keys(original, patch, path)
    ordered: set[str] = set()
    for key in patch:
        if key.startswith(SET_ELEMENT_ORDER):
            _set_element_order(original, patch, key, fields, path, ordered)
    for key, value in patch.items():
        if key == RETAIN_KEYS or key in ordered or key.startswith(SET_ELEMENT_ORDER):
            continue
        if key.startswith(DELETE_FROM_PRIMITIVE_LIST):
            continue  # after the additions, below
        if value is None:
            original.pop(key, None)
            continue
        field = fields.get(key, _PLAIN)
        where = _join(path, key)
        current = original.get(key)
        merged: Any = None
        if isinstance(current, dict) and isinstance(value, dict):
            merged = _merge_map(current, value, field.type_name, where)
        elif isinstance(current, list) and isinstance(value, list):
            merged = _merge_list(current, value, field, where)[0]
        else:
            merged = _fresh(value, field, where)
        if merged is None:
            original.pop(key, None)
        else:
            original[key] = merged
    for key, value in patch.items():
        if key.startswith(DELETE_FROM_PRIMITIVE_LIST):
            _delete_from_primitive_list(original, key, value, path)
    return original


def _fresh(value: Any, field: _Field, path: str) -> Any:
    """A patch value with nothing to merge into, cleaned of nulls and directives; None if deleted."""
    if isinstance(value, dict):
        return _merge_map({}, value, field.type_name, path)
    if isinstance(value, list):
        return _merge_list([], value, field, path)[0]
    return value


def _merge_list(
    original: list[Any], patch: list[Any], field: _Field, path: str
) -> tuple[list[Any], list[Any]]:
    """The merged list, and the live order a ``$setElementOrder`` on it falls back to.

    That order is what upstream's in-place slice edits leave in the live list's slots: the
    elements left after deletions, then the appended ones, cut to the live list's length.
    """
    if not field.merge:
        return _atomic(patch, field, path), original
    if not original and not patch:
        return [], original
    if _element_kind(original, patch, path) != "object":
        merged = _unique(original + patch)
        in_patch, server_only = _partition(merged, patch, "")
        return _normalize(in_patch, server_only, patch, original, ""), original
    key = field.merge_key
    if not key:
        raise StrategicMergePatchError(f"{_at(path)}cannot merge lists without merge key for type map")
    kept = list(original)
    plain: list[Any] = []
    replace = False
    for element in patch:
        if DIRECTIVE not in element:
            plain.append(element)
            continue
        directive = element[DIRECTIVE]
        if directive == "delete":
            if key not in element:
                raise _no_merge_key(path, element, key)
            kept = [item for item in kept if not _has_key_value(item, key, element[key])]
        elif directive == "replace":
            replace = True
        elif directive == "merge":
            raise StrategicMergePatchError(f"{_at(path)}merging lists cannot yet be specified in the patch")
        else:
            raise StrategicMergePatchError(
                f"{_at(path)}unknown patch type: {_compact(directive)} in map: {_compact(element)}"
                " (expected $patch: replace or delete in a list element)"
            )
    if replace:
        for element in plain:
            if key not in element:
                raise _no_merge_key(path, element, key)
        replaced = [
            _merge_fields({}, element, field.type_name, _element_path(path, key, element[key]))
            for element in plain
        ]
        return replaced, original
    merged = list(kept)
    appended: list[Any] = []
    for element in plain:
        if key not in element:
            raise _no_merge_key(path, element, key)
        where = _element_path(path, key, element[key])
        index = _find(merged, key, element[key])
        if index >= 0:
            merged[index] = _merge_fields(merged[index], element, field.type_name, where)
        else:
            added = _merge_fields({}, element, field.type_name, where)
            merged.append(added)
            appended.append(added)
    for element in merged:
        if key not in element:
            raise _no_merge_key(path, element, key)
    in_patch, server_only = _partition(merged, plain, key)
    window = (kept + appended)[: len(original)]
    return _normalize(in_patch, server_only, plain, kept, key), window


def _atomic(patch: list[Any], field: _Field, path: str) -> list[Any]:
    """A list replaced whole: its object elements cleaned, those deleted by a directive dropped."""
    result: list[Any] = []
    for index, element in enumerate(patch):
        if isinstance(element, dict):
            cleaned = _merge_map({}, element, field.type_name, f"{path}[{index}]")
            if cleaned is not None:
                result.append(cleaned)
        elif isinstance(element, list):
            result.append(copy.deepcopy(element))
        else:
            result.append(element)
    return result


def _element_kind(original: list[Any], patch: list[Any], path: str) -> str:
    """The one JSON type of the elements of a merged list (upstream's sliceElementType)."""
    kind = ""
    for element in original + patch:
        current = _json_type(element)
        if current == "array":
            raise StrategicMergePatchError(f"{_at(path)}lists of lists are not supported", UNPROCESSABLE)
        if kind and current != kind:
            raise StrategicMergePatchError(
                f"{_at(path)}list element types are not identical: {kind} and {current}"
            )
        kind = current
    return kind


def _retain_keys(original: JsonObject, patch: JsonObject, path: str) -> None:
    keep = patch[RETAIN_KEYS]
    if not isinstance(keep, list) or not all(isinstance(name, str) for name in keep):
        raise StrategicMergePatchError(
            f"{_at(path)}invalid patch format of retainKeys: {RETAIN_KEYS} must be a list of field"
            f" names, not {_compact(keep)}",
            BAD_REQUEST,
        )
    allowed = set(keep)
    for key, value in patch.items():
        if value is None or key in (RETAIN_KEYS, DIRECTIVE) or key in allowed:
            continue
        if key.startswith(DELETE_FROM_PRIMITIVE_LIST) or key.startswith(SET_ELEMENT_ORDER):
            continue
        raise StrategicMergePatchError(
            f"{_at(path)}invalid patch format of retainKeys: the patch sets {key!r}, which"
            f" {RETAIN_KEYS} {_compact(keep)} does not keep",
            BAD_REQUEST,
        )
    for key in list(original):
        if key not in allowed:
            del original[key]


def _delete_from_primitive_list(original: JsonObject, directive: str, values: Any, path: str) -> None:
    name = directive[len(DELETE_FROM_PRIMITIVE_LIST):]
    if not name or not isinstance(values, list) or not all(_is_scalar(value) for value in values):
        raise StrategicMergePatchError(
            f"{_at(path)}invalid patch format of primitive list: {directive} must name a field and"
            f" hold a list of values, not {_compact(values)}",
            BAD_REQUEST,
        )
    if name not in original:
        return  # nothing to delete from; upstream does not create the list either
    current = original[name]
    if not isinstance(current, list) or not all(_is_scalar(item) for item in current):
        raise StrategicMergePatchError(
            f"{_at(_join(path, name))}{directive} applies to a list of values, not {_compact(current)}"
        )
    drop = {_identity(value, "") for value in values}
    original[name] = [item for item in current if _identity(item, "") not in drop]


def _set_element_order(
    original: JsonObject,
    patch: JsonObject,
    directive: str,
    fields: dict[str, _Field],
    path: str,
    ordered: set[str],
) -> None:
    """Merge the list a ``$setElementOrder/<field>`` names and put it in that order."""
    name = directive[len(SET_ELEMENT_ORDER):]
    order = patch[directive]
    if not name or not isinstance(order, list):
        raise StrategicMergePatchError(
            f"{_at(path)}invalid patch format of setElementOrder list: {directive} must name a field"
            f" and hold a list, not {_compact(order)}",
            BAD_REQUEST,
        )
    field = fields.get(name, _PLAIN)
    if not field.merge or patch.get(name, []) is None:
        return  # a list replaced whole (or deleted) keeps the patch's own order
    where = _join(path, name)
    key = field.merge_key
    for item in order:
        if key and not (isinstance(item, dict) and key in item):
            raise _no_merge_key(where, item, key)
        if not key and not _is_scalar(item):
            raise StrategicMergePatchError(
                f"{_at(where)}invalid patch format of setElementOrder list: {_compact(item)} is not"
                " a value of a list of values",
                BAD_REQUEST,
            )
    found_original = name in original
    found_patch = name in patch
    current: list[Any] = []
    patch_list: list[Any] = []
    if found_original:
        if not isinstance(original[name], list):
            raise StrategicMergePatchError(
                f"{_at(where)}expected a list, but the object has {_compact(original[name])}"
            )
        current = original[name]
    if found_patch:
        if not isinstance(patch[name], list):
            raise StrategicMergePatchError(
                f"{_at(where)}expected a list, but the patch has {_compact(patch[name])}"
            )
        patch_list = patch[name]
        _check_patch_order(patch_list, order, key, where)
    if not found_original and not found_patch:
        return
    if found_patch:
        merged, window = _merge_list(current, patch_list, field, where)
    else:
        merged, window = current, current
    in_order, server_only = _partition(merged, order, key)
    original[name] = _normalize(in_order, server_only, order, window, key)
    ordered.add(name)


def _check_patch_order(patch_list: list[Any], order: list[Any], key: str, path: str) -> None:
    """The patch list names no element outside the order list, and none out of its order."""
    if not order or not patch_list:
        return
    listed = [item for item in patch_list if not (isinstance(item, dict) and DIRECTIVE in item)]
    position = 0
    for entry in order:
        if position == len(listed):
            return
        item = listed[position]
        if key and not (isinstance(item, dict) and key in item):
            raise _no_merge_key(path, item, key)
        if _identity(item, key) == _identity(entry, key):
            position += 1
    if position < len(listed):
        raise StrategicMergePatchError(
            f"{_at(path)}the order in patch list {_compact(patch_list)} doesn't match"
            f" {SET_ELEMENT_ORDER}{path.rsplit('.', 1)[-1]} list {_compact(order)}"
        )


# --- Element order, as upstream's normalizeElementOrder


def _normalize(
    in_patch: list[Any], server_only: list[Any], patch_order: list[Any], server_order: list[Any], key: str
) -> list[Any]:
    """Patch elements in the patch's order, merged into the live ones in live order."""
    patch_sorted = _sort_by(in_patch, patch_order, key)
    server_sorted = _sort_by(server_only, server_order, key)
    positions = _positions(server_order, key)
    result: list[Any] = []
    left = 0
    right = 0
    while left < len(server_sorted) or right < len(patch_sorted):
        if right >= len(patch_sorted):
            result.append(server_sorted[left])
            left += 1
            continue
        if left < len(server_sorted):
            left_at = positions.get(_identity(server_sorted[left], key), -1)
            right_at = positions.get(_identity(patch_sorted[right], key), -1)
            if 0 <= left_at < right_at:
                result.append(server_sorted[left])
                left += 1
                continue
        result.append(patch_sorted[right])
        right += 1
    return result


def _sort_by(items: list[Any], order: list[Any], key: str) -> list[Any]:
    """A stable sort by position in ``order``; items it lacks go last."""
    positions = _positions(order, key)
    decorated: list[tuple[int, int, Any]] = []
    for index, item in enumerate(items):
        decorated.append((positions.get(_identity(item, key), len(order)), index, item))
    decorated.sort()
    return [entry[2] for entry in decorated]


def _positions(items: list[Any], key: str) -> dict[tuple[str, Any], int]:
    """Each element's identity -> its first position."""
    positions: dict[tuple[str, Any], int] = {}
    for index, item in enumerate(items):
        positions.setdefault(_identity(item, key), index)
    return positions


def _partition(items: list[Any], by: list[Any], key: str) -> tuple[list[Any], list[Any]]:
    """The items present in ``by`` and the others, each in their order in ``items``."""
    present = {_identity(item, key) for item in by}
    inside: list[Any] = []
    outside: list[Any] = []
    for item in items:
        if _identity(item, key) in present:
            inside.append(item)
        else:
            outside.append(item)
    return inside, outside


def _unique(items: list[Any]) -> list[Any]:
    seen: set[tuple[str, Any]] = set()
    result: list[Any] = []
    for item in items:
        identity = _identity(item, "")
        if identity not in seen:
            seen.add(identity)
            result.append(item)
    return result


def _find(items: list[Any], key: str, value: Any) -> int:
    for index, item in enumerate(items):
        if _has_key_value(item, key, value):
            return index
    return -1


def _has_key_value(item: Any, key: str, value: Any) -> bool:
    return isinstance(item, dict) and key in item and _identity(item[key], "") == _identity(value, "")


def _identity(item: Any, key: str) -> tuple[str, Any]:
    """What tells list elements apart: the merge key's value, or the value itself.

    Hashable, and JSON-typed: the string "80" differs from the number 80, true from 1.
    """
    value = item.get(key) if key and isinstance(item, dict) else item
    if value is None or isinstance(value, (bool, str)):
        return (_json_type(value), value)
    if isinstance(value, (int, float)):
        return ("number", value)
    return (_json_type(value), _compact(value))


# --- Helpers


def _is_scalar(value: Any) -> bool:
    return not isinstance(value, (dict, list))


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, str):
        return "string"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, dict):
        return "object"
    if isinstance(value, list):
        return "array"
    return type(value).__name__


def _compact(value: Any) -> str:
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), default=repr)
    return text if len(text) <= 200 else text[:197] + "..."


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _element_path(path: str, key: str, value: Any) -> str:
    return f"{path}[{key}={_compact(value)}]"


def _at(path: str) -> str:
    return f"{path}: " if path else ""


def _no_merge_key(path: str, element: Any, key: str) -> StrategicMergePatchError:
    return StrategicMergePatchError(
        f"{_at(path)}map: {_compact(element)} does not contain declared merge key: {key}"
    )
