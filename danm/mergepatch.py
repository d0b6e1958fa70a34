"""JSON merge patches (RFC 7386): how danm changes Kubernetes objects it did not create.

danm models only part of each object. Sending back a whole decoded object would silently drop
everything else: labels and annotations set by others, finalizers, ownerReferences, spec keys of
a newer CRD version. So a change is the difference between the object as danm decoded it and as
danm wants it, restricted to the modelled fields, and sent as a merge patch. Putting the
resourceVersion it read into the patch makes the API server refuse it with 409 Conflict when the
object moved on meanwhile: the same optimistic concurrency as a PUT, without the data loss.

``apply`` is the server side of the same RFC, used by the embedded API server and by tests.
"""

from typing import Any

import msgspec

JsonObject = dict[str, Any]


def diff(old: JsonObject, new: JsonObject) -> JsonObject:
    """The merge patch that turns ``old`` into ``new`` (both JSON objects)."""
    patch: JsonObject = {}
    for key in old:
        if key not in new:
            patch[key] = None
    for key, value in new.items():
        if key not in old:
            patch[key] = value
            continue
        before = old[key]
        if before == value:
            continue
        if isinstance(before, dict) and isinstance(value, dict):
            nested = diff(before, value)
            if nested:
                patch[key] = nested
        else:
            patch[key] = value
    return patch


def apply(target: Any, patch: Any) -> Any:
    """Apply a merge patch to a JSON document and return the result (inputs are not changed)."""
    if not isinstance(patch, dict):
        return patch
    result: JsonObject = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = apply(result.get(key), value)
    return result


def struct_patch(old: msgspec.Struct, new: msgspec.Struct) -> JsonObject:
    """The merge patch between two versions of a modelled object, guarded by old's resourceVersion.

    An empty dict means nothing changed and nothing needs writing.
    """
    before = msgspec.to_builtins(old)
    after = msgspec.to_builtins(new)
    if not isinstance(before, dict) or not isinstance(after, dict):
        raise TypeError("struct_patch needs objects that encode as JSON objects")
    patch = diff(before, after)
    if not patch:
        return patch
    version = before.get("metadata", {}).get("resourceVersion", "")
    if version:
        metadata = patch.setdefault("metadata", {})
        metadata["resourceVersion"] = version
    return patch
