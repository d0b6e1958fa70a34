"""The object store of the embedded API server: kube-apiserver's storage semantics, without HTTP.

Objects are JSON dicts, stored per resource under (namespace, name). They are never changed in
place: every write stores a new dict, so a reader may hold on to what it got. One global counter
gives every create, update and delete its resourceVersion, and every change is appended to a
bounded history from which watches are served in order; a watch from a version older than the
history gets 410 Expired, as from a compacted etcd.

Everything here is synchronous and guarded by one lock (a Condition, which watchers wait on),
which makes every write atomic and linearizable. The HTTP shell (danm/apiserver.py) decodes
requests, runs admission and schema validation, and calls in here.
"""

import base64
import json
import random
import re
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from typing import Any, Final

from danm.errors import DanmError
from danm.labels import Selector, label_key_error, label_value_error

JsonObject = dict[str, Any]

DEFAULT_HISTORY: Final = 100_000
MAX_OBJECT_BYTES: Final = 1_572_864  # etcd's request limit: 1.5 MiB
MAX_ANNOTATION_BYTES: Final = 262_144  # 256 KiB for all annotations of one object
SNAPSHOT_LIMIT: Final = 256  # paged lists whose continue tokens are still served

_DNS_LABEL: Final = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_DNS_SUBDOMAIN: Final = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_GENERATE_ALPHABET: Final = "bcdfghjklmnpqrstvwxz2456789"

ADDED: Final = "ADDED"
MODIFIED: Final = "MODIFIED"
DELETED: Final = "DELETED"


class StatusError(DanmError):
    """A request the API refuses; rendered as a meta/v1 Status with this code and reason."""

    def __init__(
        self,
        code: int,
        reason: str,
        message: str,
        details: JsonObject | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.reason = reason
        self.message = message
        self.details = details if details is not None else {}

    def status(self) -> JsonObject:
        return {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "details": self.details,
            "code": self.code,
        }


class Resource:
    """What the server knows of one resource type (built-in or from a CRD)."""

    def __init__(
        self,
        group: str,
        version: str,
        kind: str,
        plural: str,
        namespaced: bool,
        singular: str = "",
        short_names: list[str] | None = None,
        categories: list[str] | None = None,
        list_kind: str = "",
        status_subresource: bool = False,
        unconditional_update: bool = False,
        generation: bool = False,
        name_is_dns_label: bool = False,
        name_is_path_segment: bool = False,
    ) -> None:
        self.group = group
        self.version = version
        self.kind = kind
        self.plural = plural
        self.namespaced = namespaced
        self.singular = singular or kind.lower()
        self.short_names = short_names or []
        self.categories = categories or []
        self.list_kind = list_kind or kind + "List"
        self.status_subresource = status_subresource
        # PUT without resourceVersion allowed (ConfigMap, Pod, Service, ...): not for CRs, Leases
        self.unconditional_update = unconditional_update
        # metadata.generation maintained (CRs, workloads, EndpointSlices)
        self.generation = generation
        self.name_is_dns_label = name_is_dns_label
        # RBAC objects only need a valid URL path segment ("caas:danm", "system:discovery")
        self.name_is_path_segment = name_is_path_segment
        # set for custom resources: the CRD's openAPIV3Schema and printer columns
        self.schema: JsonObject | None = None
        self.printer_columns: list[JsonObject] = []
        self.field_labels: tuple[str, ...] = ("metadata.name", "metadata.namespace")

    @property
    def group_resource(self) -> str:
        """The GR of error messages: ``pods`` or ``danmnets.danm.io``."""
        return f"{self.plural}.{self.group}" if self.group else self.plural

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    def details(self, name: str) -> JsonObject:
        details: JsonObject = {"name": name, "kind": self.plural}
        if self.group:
            details["group"] = self.group
        return details


class WatchEvent:
    """One change, as the history keeps it: the state before and after."""

    def __init__(
        self, revision: int, resource: str, kind: str, old: JsonObject | None, new: JsonObject | None
    ) -> None:
        self.revision = revision
        self.resource = resource
        self.kind = kind  # ADDED, MODIFIED or DELETED
        self.old = old
        self.new = new

    def object(self) -> JsonObject:
        current = self.new if self.new is not None else self.old
        assert current is not None
        return current


class ListQuery:
    """What a LIST or WATCH selects: a namespace ("" = all), labels, fields."""

    def __init__(
        self,
        namespace: str = "",
        labels: Selector | None = None,
        fields: list[tuple[str, str, str]] | None = None,
    ) -> None:
        self.namespace = namespace
        self.labels = labels
        # (field label, operator "=" or "!=", value)
        self.fields = fields or []

    def matches(self, obj: JsonObject) -> bool:
        metadata = obj.get("metadata", {})
        if self.namespace and metadata.get("namespace", "") != self.namespace:
            return False
        if self.labels is not None and not self.labels.matches(metadata.get("labels")):
            return False
        for path, operator, wanted in self.fields:
            value = field_value(obj, path)
            if (value == wanted) != (operator == "="):
                return False
        return True


def field_value(obj: JsonObject, path: str) -> str:
    """A field selector's view of a field: strings as they are, booleans as true/false."""
    node: Any = obj
    for part in path.split("."):
        if not isinstance(node, dict):
            return ""
        node = node.get(part)
    if node is None:
        return ""
    if isinstance(node, bool):
        return "true" if node else "false"
    return str(node)


def parse_field_selector(text: str, allowed: tuple[str, ...]) -> list[tuple[str, str, str]]:
    """``metadata.name=x,status.phase!=Running``: only =, == and != exist for fields."""
    requirements: list[tuple[str, str, str]] = []
    if not text.strip():
        return requirements
    for term in text.split(","):
        term = term.strip()
        match = re.fullmatch(r"([^=!\s]+)\s*(==|=|!=)\s*(.*)", term)
        if match is None:
            raise StatusError(400, "BadRequest", f"invalid field selector: {term!r}")
        path, operator, value = match.group(1), match.group(2), match.group(3).strip()
        if path not in allowed:
            raise StatusError(400, "BadRequest", f"field label not supported: {path}")
        requirements.append((path, "!=" if operator == "!=" else "=", value))
    return requirements


# --- Metadata validation


def validate_metadata(resource: Resource, obj: JsonObject) -> list[JsonObject]:
    """The causes (field, reason, message) kube-apiserver gives for bad ObjectMeta."""
    causes: list[JsonObject] = []
    metadata = obj.get("metadata", {})
    name = metadata.get("name", "")
    if name:
        reason = _path_segment_error(name) if resource.name_is_path_segment else _name_error(name, resource.name_is_dns_label)
        if reason:
            causes.append(_cause("metadata.name", "FieldValueInvalid", f'Invalid value: "{name}": {reason}'))
    for key, value in (metadata.get("labels") or {}).items():
        key_error = label_key_error(key)
        if key_error:
            causes.append(_cause("metadata.labels", "FieldValueInvalid", f'Invalid value: "{key}": {key_error}'))
        if not isinstance(value, str):
            causes.append(_cause(f"metadata.labels.{key}", "FieldValueTypeInvalid", "Invalid value: must be a string"))
            continue
        value_error = label_value_error(value)
        if value_error:
            causes.append(_cause("metadata.labels", "FieldValueInvalid", f'Invalid value: "{value}": {value_error}'))
    annotations = metadata.get("annotations") or {}
    total = 0
    for key, value in annotations.items():
        key_error = label_key_error(key.lower())
        if key_error:
            causes.append(_cause("metadata.annotations", "FieldValueInvalid", f'Invalid value: "{key}": {key_error}'))
        total += len(key) + len(str(value))
    if total > MAX_ANNOTATION_BYTES:
        causes.append(
            _cause(
                "metadata.annotations",
                "FieldValueTooLong",
                f"Too long: may not be more than {MAX_ANNOTATION_BYTES} bytes",
            )
        )
    return causes


def _name_error(name: str, dns_label: bool) -> str:
    if dns_label:
        if len(name) > 63 or not _DNS_LABEL.match(name):
            return (
                "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', "
                "and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', "
                "regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')"
            )
        return ""
    if len(name) > 253 or not _DNS_SUBDOMAIN.match(name):
        return (
            "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', "
            "and must start and end with an alphanumeric character (e.g. 'example.com', regex used for "
            "validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
        )
    return ""


def _path_segment_error(name: str) -> str:
    if name in (".", ".."):
        return f"may not be '{name}'"
    for forbidden in ("/", "%"):
        if forbidden in name:
            return f"may not contain '{forbidden}'"
    return ""


def _cause(field: str, reason: str, message: str) -> JsonObject:
    return {"field": field, "reason": reason, "message": message}


def invalid(resource: Resource, name: str, causes: list[JsonObject]) -> StatusError:
    """422 Invalid, worded as kube-apiserver words it."""
    kind = resource.kind + (f".{resource.group}" if resource.group else "")
    parts = [f"{cause['field']}: {cause['message']}" for cause in causes]
    body = parts[0] if len(parts) == 1 else "[" + ", ".join(parts) + "]"
    details: JsonObject = {"name": name, "kind": resource.kind, "causes": causes}
    if resource.group:
        details["group"] = resource.group
    return StatusError(422, "Invalid", f'{kind} "{name}" is invalid: {body}', details)


def encoded_size(obj: JsonObject) -> int:
    return len(json.dumps(obj, separators=(",", ":")).encode())


def now_rfc3339() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


# --- The store


class Store:
    """All objects of all resources, one revision counter, one history of changes."""

    def __init__(self, history: int = DEFAULT_HISTORY) -> None:
        self.lock = threading.Condition()
        self.revision = 0
        self.history: deque[WatchEvent] = deque(maxlen=max(history, 1))
        self.objects: dict[str, dict[tuple[str, str], JsonObject]] = {}
        self.snapshots: dict[str, tuple[int, list[JsonObject]]] = {}
        self.closed = False

    # -- helpers (call with the lock held)

    def _bucket(self, resource: Resource) -> dict[tuple[str, str], JsonObject]:
        return self.objects.setdefault(resource.group_resource, {})

    def _record(self, resource: Resource, kind: str, old: JsonObject | None, new: JsonObject | None) -> None:
        self.history.append(WatchEvent(self.revision, resource.group_resource, kind, old, new))
        self.lock.notify_all()

    def _next_revision(self) -> str:
        self.revision += 1
        return str(self.revision)

    # -- reads

    def get(self, resource: Resource, namespace: str, name: str) -> JsonObject:
        with self.lock:
            found = self._bucket(resource).get((namespace, name))
        if found is None:
            raise StatusError(404, "NotFound", f'{resource.group_resource} "{name}" not found', resource.details(name))
        return found

    def find(self, resource: Resource, namespace: str, name: str) -> JsonObject | None:
        with self.lock:
            return self._bucket(resource).get((namespace, name))

    def list_objects(
        self,
        resource: Resource,
        query: ListQuery,
        limit: int = 0,
        continue_token: str = "",
    ) -> tuple[list[JsonObject], str, str]:
        """Matching objects in key order, the list's resourceVersion and the next continue token."""
        with self.lock:
            if continue_token:
                snapshot = self.snapshots.pop(continue_token, None)
                if snapshot is None:
                    self._check_token(continue_token)
                    raise StatusError(
                        410,
                        "Expired",
                        "The provided continue parameter is too old to display a consistent list result. "
                        "You can start a new list without the continue parameter.",
                    )
                revision, remaining = snapshot
            else:
                revision = self.revision
                bucket = self._bucket(resource)
                remaining = [bucket[key] for key in sorted(bucket) if query.matches(bucket[key])]
            if limit <= 0 or len(remaining) <= limit:
                return remaining, str(revision), ""
            page, rest = remaining[:limit], remaining[limit:]
            token = base64.urlsafe_b64encode(
                json.dumps({"v": "meta.k8s.io/v1", "rv": revision, "id": uuid.uuid4().hex}).encode()
            ).decode()
            self.snapshots[token] = (revision, rest)
            while len(self.snapshots) > SNAPSHOT_LIMIT:
                self.snapshots.pop(next(iter(self.snapshots)))
            return page, str(revision), token

    @staticmethod
    def _check_token(token: str) -> None:
        try:
            decoded = json.loads(base64.urlsafe_b64decode(token.encode()))
            if not isinstance(decoded, dict) or "rv" not in decoded:
                raise ValueError(token)
        except (ValueError, json.JSONDecodeError):
            raise StatusError(400, "BadRequest", "continue key is not valid: incorrect encoded start resourceVersion (version meta.k8s.io/v1)") from None

    # -- writes

    def create(self, resource: Resource, obj: JsonObject, dry_run: bool = False) -> JsonObject:
        """Store a new object; fills uid, creationTimestamp, resourceVersion, generation, name."""
        metadata = dict(obj.get("metadata") or {})
        if metadata.get("resourceVersion"):
            raise StatusError(500, "InternalError", "resourceVersion should not be set on objects to be created")
        namespace = metadata.get("namespace", "") if resource.namespaced else ""
        with self.lock:
            bucket = self._bucket(resource)
            if not metadata.get("name"):
                prefix = metadata.get("generateName", "")
                if not prefix:
                    raise invalid(
                        resource,
                        "",
                        [_cause("metadata.name", "FieldValueRequired", "Required value: name or generateName is required")],
                    )
                metadata["name"] = self._generated_name(bucket, namespace, prefix[:58])
            name = metadata["name"]
            if (namespace, name) in bucket:
                raise StatusError(
                    409, "AlreadyExists", f'{resource.group_resource} "{name}" already exists', resource.details(name)
                )
            metadata.pop("deletionTimestamp", None)
            metadata.pop("deletionGracePeriodSeconds", None)
            metadata.pop("managedFields", None)
            metadata["uid"] = str(uuid.uuid4())
            metadata["creationTimestamp"] = now_rfc3339()
            if resource.generation:
                metadata["generation"] = 1
            else:
                metadata.pop("generation", None)
            if not dry_run:
                metadata["resourceVersion"] = self._next_revision()
            stored = dict(obj, metadata=metadata)
            stored["apiVersion"] = resource.api_version
            stored["kind"] = resource.kind
            self._check_size(resource, stored)
            if dry_run:
                return stored
            bucket[(namespace, name)] = stored
            self._record(resource, ADDED, None, stored)
            return stored

    def _generated_name(self, bucket: dict[tuple[str, str], JsonObject], namespace: str, prefix: str) -> str:
        for _ in range(100):
            name = prefix + "".join(random.choice(_GENERATE_ALPHABET) for _ in range(5))
            if (namespace, name) not in bucket:
                return name
        raise StatusError(500, "InternalError", "could not generate a unique name")

    @staticmethod
    def _check_size(resource: Resource, obj: JsonObject) -> None:
        if encoded_size(obj) > MAX_OBJECT_BYTES:
            # what kube-apiserver answers when etcd refuses an object over its 1.5 MiB limit
            raise StatusError(413, "RequestEntityTooLarge", "etcdserver: request is too large")

    def update(
        self,
        resource: Resource,
        namespace: str,
        name: str,
        change: Callable[[JsonObject], JsonObject],
        dry_run: bool = False,
    ) -> tuple[JsonObject, bool]:
        """Compare-and-swap: ``change`` maps the current object to the wanted one, under the lock.

        ``change`` raises StatusError to refuse (409 on a stale resourceVersion, 422 ...).
        Returns the stored result and whether anything was written (no-op writes keep the RV).
        Finalizers: when an object being deleted loses its last finalizer, it is deleted.
        """
        with self.lock:
            bucket = self._bucket(resource)
            current = bucket.get((namespace, name))
            if current is None:
                raise StatusError(404, "NotFound", f'{resource.group_resource} "{name}" not found', resource.details(name))
            wanted = change(current)
            metadata = dict(wanted.get("metadata") or {})
            old_metadata = current["metadata"]
            # server-owned metadata survives whatever the client sent
            for key in ("uid", "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds"):
                if key in old_metadata:
                    metadata[key] = old_metadata[key]
                else:
                    metadata.pop(key, None)
            metadata["name"] = name
            if resource.namespaced:
                metadata["namespace"] = namespace
            metadata.pop("managedFields", None)
            if "deletionTimestamp" in old_metadata:
                added = set(metadata.get("finalizers") or []) - set(old_metadata.get("finalizers") or [])
                if added:
                    raise invalid(
                        resource,
                        name,
                        [
                            _cause(
                                "metadata.finalizers",
                                "FieldValueForbidden",
                                "Forbidden: no new finalizers can be added if the object is being deleted, "
                                f"found new finalizers {json.dumps(sorted(added))}",
                            )
                        ],
                    )
            if resource.generation:
                generation = int(old_metadata.get("generation", 1))
                if _spec_changed(current, wanted, resource.status_subresource):
                    generation += 1
                metadata["generation"] = generation
            metadata["resourceVersion"] = old_metadata.get("resourceVersion", "")
            candidate = dict(wanted, metadata=metadata)
            candidate["apiVersion"] = resource.api_version
            candidate["kind"] = resource.kind
            if candidate == current:
                return current, False
            self._check_size(resource, candidate)
            if dry_run:
                return candidate, False
            if "deletionTimestamp" in old_metadata and not metadata.get("finalizers"):
                del bucket[(namespace, name)]
                metadata["resourceVersion"] = self._next_revision()
                self._record(resource, DELETED, current, candidate)
                return candidate, True
            metadata["resourceVersion"] = self._next_revision()
            bucket[(namespace, name)] = candidate
            self._record(resource, MODIFIED, current, candidate)
            return candidate, True

    def delete(
        self,
        resource: Resource,
        namespace: str,
        name: str,
        precondition_uid: str = "",
        precondition_version: str = "",
        dry_run: bool = False,
    ) -> tuple[JsonObject, bool]:
        """Delete, or with finalizers mark for deletion. Returns the object and whether it is gone."""
        with self.lock:
            bucket = self._bucket(resource)
            current = bucket.get((namespace, name))
            if current is None:
                raise StatusError(404, "NotFound", f'{resource.group_resource} "{name}" not found', resource.details(name))
            metadata = current["metadata"]
            if precondition_uid and precondition_uid != metadata.get("uid"):
                raise StatusError(
                    409,
                    "Conflict",
                    f'Operation cannot be fulfilled on {resource.group_resource} "{name}": Precondition failed: '
                    f"UID in precondition: {precondition_uid}, UID in object meta: {metadata.get('uid')}",
                    resource.details(name),
                )
            if precondition_version and precondition_version != metadata.get("resourceVersion"):
                raise StatusError(
                    409,
                    "Conflict",
                    f'Operation cannot be fulfilled on {resource.group_resource} "{name}": the ResourceVersion '
                    f"in the precondition ({precondition_version}) does not match the ResourceVersion in record "
                    f"({metadata.get('resourceVersion')}). The object might have been modified",
                    resource.details(name),
                )
            if dry_run:
                return current, not metadata.get("finalizers")
            if metadata.get("finalizers"):
                if "deletionTimestamp" in metadata:
                    return current, False
                marked_metadata = dict(metadata, deletionTimestamp=now_rfc3339(), deletionGracePeriodSeconds=0)
                if resource.generation and "generation" in metadata:
                    marked_metadata["generation"] = int(metadata["generation"]) + 1
                marked_metadata["resourceVersion"] = self._next_revision()
                marked = dict(current, metadata=marked_metadata)
                bucket[(namespace, name)] = marked
                self._record(resource, MODIFIED, current, marked)
                return marked, False
            del bucket[(namespace, name)]
            gone = dict(current, metadata=dict(metadata, resourceVersion=self._next_revision()))
            self._record(resource, DELETED, current, gone)
            return gone, True

    # -- watch

    def events_since(self, revision: int, timeout: float) -> list[WatchEvent]:
        """Events with a revision above ``revision``, waiting up to ``timeout`` for the first.

        Raises StatusError 410 when ``revision`` is older than the retained history.
        """
        deadline = time.monotonic() + timeout
        with self.lock:
            while True:
                if self.history and revision < self.history[0].revision - 1:
                    raise StatusError(
                        410,
                        "Expired",
                        f"too old resource version: {revision} ({self.history[0].revision - 1})",
                    )
                if self.revision > revision or self.closed:
                    return [event for event in self.history if event.revision > revision]
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return []
                self.lock.wait(remaining)

    def close(self) -> None:
        """Wake every watcher for shutdown."""
        with self.lock:
            self.closed = True
            self.lock.notify_all()


def _spec_changed(old: JsonObject, new: JsonObject, status_subresource: bool) -> bool:
    """Generation counts changes outside metadata (and outside status with a status subresource)."""
    ignored = {"metadata", "status"} if status_subresource else {"metadata"}
    keys = (set(old) | set(new)) - ignored - {"apiVersion", "kind"}
    return any(old.get(key) != new.get(key) for key in keys)


def watch_event_type(event: WatchEvent, query: ListQuery) -> str:
    """How a change looks through a selector: "" when the watcher does not see it at all."""
    old_match = event.old is not None and event.kind != ADDED and query.matches(event.old)
    new_match = event.new is not None and event.kind != DELETED and query.matches(event.new)
    if event.kind == DELETED:
        return DELETED if query.matches(event.object()) else ""
    if old_match and new_match:
        return MODIFIED
    if new_match:
        return ADDED
    if old_match:
        return DELETED
    return ""
