"""Patches: how danm changes Kubernetes objects it did not create, and how patches apply.

danm models only part of each object. Sending back a whole decoded object would silently drop
everything else: labels and annotations set by others, finalizers, ownerReferences, keys of a
newer CRD version, unknown keys inside list items. So a change is the difference between the
object as danm decoded it and as danm wants it, restricted to the modelled fields, and sent as a
JSON Patch (RFC 6902) whose paths reach down into nested objects and same-length lists. Its
first operation sets ``metadata.resourceVersion`` to the version danm read: the API server
refuses the patch with 409 Conflict when the object moved on meanwhile, the same optimistic
concurrency as a PUT, without the data loss.

The module also applies patches (RFC 6902 and RFC 7386 merge patches), for the embedded API
server and for tests.
"""

import copy
from typing import Any

import msgspec

from danm.errors import DanmError

JsonObject = dict[str, Any]
Operation = dict[str, Any]


class PatchError(DanmError):
    """A patch that cannot be applied; ``test_failed`` tells a failed ``test`` op (HTTP 422)."""

    def __init__(self, message: str, test_failed: bool = False) -> None:
        super().__init__(message)
        self.test_failed = test_failed


# --- JSON Pointer (RFC 6901)


def pointer(path: list[str]) -> str:
    return "".join("/" + part.replace("~", "~0").replace("/", "~1") for part in path)


def parse_pointer(text: str) -> list[str]:
    if text == "":
        return []
    if not text.startswith("/"):
        raise PatchError(f"invalid JSON pointer {text!r}: must start with '/'")
    return [part.replace("~1", "/").replace("~0", "~") for part in text[1:].split("/")]


# --- JSON Patch (RFC 6902)


def json_patch_diff(old: Any, new: Any) -> list[Operation]:
    """Operations that turn ``old`` into ``new``, as deep as objects and same-length lists go."""
    operations: list[Operation] = []
    _diff_into(old, new, [], operations, False)
    return operations


def _diff_into(
    old: Any, new: Any, path: list[str], operations: list[Operation], list_item: bool
) -> None:
    if old == new:
        return
    if isinstance(old, dict) and isinstance(new, dict) and old:
        for key in old:
            if key not in new:
                operations.append({"op": "remove", "path": pointer([*path, key])})
        for key, value in new.items():
            if key in old:
                _diff_into(old[key], value, [*path, key], operations, False)
            else:
                # "add" sets a member whether or not it exists
                operations.append({"op": "add", "path": pointer([*path, key]), "value": value})
        return
    if isinstance(old, list) and isinstance(new, list) and len(old) == len(new):
        for index, (before, after) in enumerate(zip(old, new)):
            _diff_into(before, after, [*path, str(index)], operations, True)
        return
    # An empty object may be a default the stored document does not even have: "add" the whole
    # value, which creates the member when it is missing (in a list, "add" would insert).
    operation = "replace" if list_item or not path else "add"
    operations.append({"op": operation, "path": pointer(path), "value": new})


def apply_json_patch(document: Any, operations: list[Operation]) -> Any:
    """Apply RFC 6902 operations to a copy of ``document``."""
    result = copy.deepcopy(document)
    for number, operation in enumerate(operations):
        try:
            result = _apply_operation(result, operation)
        except PatchError as error:
            raise PatchError(f"operation {number}: {error}", error.test_failed) from None
    return result


def _apply_operation(document: Any, operation: Operation) -> Any:
    if not isinstance(operation, dict) or "op" not in operation or "path" not in operation:
        raise PatchError("each operation needs 'op' and 'path'")
    op = operation["op"]
    path = parse_pointer(operation["path"])
    if op in ("add", "replace", "test") and "value" not in operation:
        raise PatchError(f"{op} needs a value")
    if op == "add":
        return _add(document, path, copy.deepcopy(operation["value"]))
    if op == "remove":
        return _remove(document, path)[0]
    if op == "replace":
        _get(document, path)
        return _add(_remove(document, path)[0], path, copy.deepcopy(operation["value"]), replace=True)
    if op == "test":
        if _get(document, path) != operation["value"]:
            raise PatchError(f"test failed at {operation['path']}", test_failed=True)
        return document
    if op in ("move", "copy"):
        if "from" not in operation:
            raise PatchError(f"{op} needs 'from'")
        source = parse_pointer(operation["from"])
        if op == "move" and path[: len(source)] == source and len(path) > len(source):
            raise PatchError("cannot move a value into itself")
        value = copy.deepcopy(_get(document, source))
        if op == "move":
            document = _remove(document, source)[0]
        return _add(document, path, value)
    raise PatchError(f"unknown operation {op!r}")


def _get(document: Any, path: list[str]) -> Any:
    node = document
    for part in path:
        if isinstance(node, dict):
            if part not in node:
                raise PatchError(f"path {pointer(path)} does not exist")
            node = node[part]
        elif isinstance(node, list):
            node = node[_index(node, part, allow_end=False)]
        else:
            raise PatchError(f"path {pointer(path)} does not exist")
    return node


def _index(node: list[Any], part: str, allow_end: bool) -> int:
    if part == "-" and allow_end:
        return len(node)
    if not part.isdigit() or (part != "0" and part.startswith("0")):
        raise PatchError(f"invalid array index {part!r}")
    index = int(part)
    if index > len(node) or (index == len(node) and not allow_end):
        raise PatchError(f"array index {index} out of range")
    return index


def _add(document: Any, path: list[str], value: Any, replace: bool = False) -> Any:
    if not path:
        return value
    parent = _get(document, path[:-1])
    last = path[-1]
    if isinstance(parent, dict):
        parent[last] = value
    elif isinstance(parent, list):
        index = _index(parent, last, allow_end=True)
        parent.insert(index, value)
    else:
        raise PatchError(f"cannot add below a scalar at {pointer(path)}")
    return document


def _remove(document: Any, path: list[str]) -> tuple[Any, Any]:
    if not path:
        return None, document
    parent = _get(document, path[:-1])
    last = path[-1]
    if isinstance(parent, dict):
        if last not in parent:
            raise PatchError(f"path {pointer(path)} does not exist")
        return document, parent.pop(last)
    if isinstance(parent, list):
        return document, parent.pop(_index(parent, last, allow_end=False))
    raise PatchError(f"path {pointer(path)} does not exist")


# --- JSON merge patch (RFC 7386)


def merge_patch_diff(old: JsonObject, new: JsonObject) -> JsonObject:
    """The merge patch that turns ``old`` into ``new`` (lists are replaced whole)."""
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
            nested = merge_patch_diff(before, value)
            if nested:
                patch[key] = nested
        else:
            patch[key] = value
    return patch


def apply_merge_patch(target: Any, patch: Any) -> Any:
    """Apply a merge patch to a JSON document and return the result (inputs are not changed)."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result: JsonObject = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = apply_merge_patch(result.get(key), value)
    return result


# --- The write policy


def struct_patch(old: msgspec.Struct, new: msgspec.Struct) -> list[Operation]:
    """The JSON Patch between two versions of a modelled object, guarded by old's resourceVersion.

    An empty list means nothing changed and nothing needs writing.
    """
    before = msgspec.to_builtins(old)
    after = msgspec.to_builtins(new)
    operations = json_patch_diff(before, after)
    if not operations:
        return operations
    version = before.get("metadata", {}).get("resourceVersion", "") if isinstance(before, dict) else ""
    if version:
        guard = {"op": "replace", "path": "/metadata/resourceVersion", "value": version}
        operations.insert(0, guard)
    return operations
