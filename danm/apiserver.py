"""The embedded Kubernetes API server (`danm apiserver`): the HTTP face of danm.apistore.

For trials without a cluster and for tests; the product itself always talks to a real API. It
speaks the parts of the Kubernetes API that danm, kubectl and the official Python client use:
discovery, CRUD on built-in and custom resources, status subresources, JSON/merge patches,
paged and filtered lists, chunked watches with 410 on expired versions, Table output with a
CRD's printer columns, dry runs, and optional bearer-token authentication.

The request flow follows kube-apiserver: decode, defaults, (for custom resources) pruning and
schema validation, metadata validation, then the store's compare-and-swap.
"""

import base64
import json
import os
import re
import socket
import ssl
import tempfile
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from collections.abc import Callable
from typing import Any, Final

from danm.admission import (
    MUTATING,
    AdmissionAttributes,
    WebhookDispatcher,
    configuration_causes,
    configuration_defaults,
    is_exempt,
)
from danm.apiresources import Registry, VERSION_INFO, crd_status, resources_from_crd
from danm.apistore import (
    DEFAULT_HISTORY,
    JsonObject,
    ListQuery,
    Resource,
    StatusError,
    Store,
    invalid,
    now_rfc3339,
    parse_field_selector,
    validate_metadata,
    watch_event_type,
)
from danm.crdschema import apply_defaults, prune, structural_causes, validate
from danm.labels import SelectorError, parse_selector
from danm.patch import PatchError, apply_json_patch, apply_merge_patch
from danm.rbac import (
    Authorizer,
    RequestAttributes,
    UserInfo,
    bootstrap_policy,
    forbidden_status,
    non_resource_request,
    service_account_user,
)
from danm.strategicpatch import StrategicMergePatchError, apply_strategic_merge_patch

SEED_NAMESPACES: Final = ("default", "kube-system", "kube-public", "kube-node-lease")
JSON_PATCH: Final = "application/json-patch+json"
MERGE_PATCH: Final = "application/merge-patch+json"
STRATEGIC_PATCH: Final = "application/strategic-merge-patch+json"
APPLY_PATCH: Final = "application/apply-patch+yaml"
DEFAULT_WATCH_SECONDS: Final = 1800.0
BOOKMARK_SECONDS: Final = 60.0
TRUE_WORDS: Final = ("1", "t", "T", "true", "True", "TRUE")
ADMIN: Final = UserInfo("danm-admin", ["system:masters", "system:authenticated"])
ANONYMOUS: Final = UserInfo("system:anonymous", ["system:unauthenticated"])
RBAC_RESOURCES: Final = ("roles", "clusterroles", "rolebindings", "clusterrolebindings")
TOKEN_SECONDS: Final = 3600
MAX_REQUEST_BYTES: Final = 3 * 1024 * 1024


class Route:
    """A parsed resource URL."""

    def __init__(self, resource: Resource, namespace: str, name: str, subresource: str, watch_path: bool) -> None:
        self.resource = resource
        self.namespace = namespace
        self.name = name
        self.subresource = subresource
        self.watch_path = watch_path


class ApiServer:
    """The server: a store, a registry, and a threaded HTTP listener."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        token: str = "",
        history: int = DEFAULT_HISTORY,
        rbac: bool = False,
        tls: bool = False,
    ) -> None:
        self.store = Store(history)
        self.registry = Registry()
        self.token = token
        self.rbac = rbac
        self.registry_lock = threading.Lock()
        # bearer tokens issued through the TokenRequest API -> (namespace, service account)
        self.service_account_tokens: dict[str, tuple[str, str]] = {}
        self.authorizer: Authorizer | None = None
        self.authorizer_key: tuple[int, ...] = ()
        namespaces = self.resource("", "v1", "namespaces")
        for name in SEED_NAMESPACES:
            self.store.create(namespaces, namespace_defaults({"metadata": {"name": name}}))
        if rbac:
            cluster_roles, cluster_role_bindings = bootstrap_policy()
            for role in cluster_roles:
                self.store.create(self.resource("rbac.authorization.k8s.io", "v1", "clusterroles"), role)
            for binding in cluster_role_bindings:
                self.store.create(self.resource("rbac.authorization.k8s.io", "v1", "clusterrolebindings"), binding)
        self.httpd = HttpServer((host, port), Handler, self)
        # (namespace, service) -> (host, port): webhook services reachable without Endpoints
        self.service_map: dict[tuple[str, str], tuple[str, int]] = {}
        self.admission = WebhookDispatcher(self.webhook_configurations, self.namespace_labels, self.resolve_service)
        self.ca_pem = b""
        if tls:
            self.ca_pem = enable_tls(self.httpd, host)
        self.thread: threading.Thread | None = None

    @property
    def address(self) -> tuple[str, int]:
        bound = self.httpd.server_address
        return str(bound[0]), int(bound[1])

    @property
    def url(self) -> str:
        """Where clients reach the server (loopback when it listens on every address)."""
        host, port = self.address
        host = {"0.0.0.0": "127.0.0.1", "::": "::1"}.get(host, host)
        shown = f"[{host}]" if ":" in host else host
        scheme = "https" if self.ca_pem else "http"
        return f"{scheme}://{shown}:{port}"

    def start(self) -> "ApiServer":
        self.thread = threading.Thread(target=self.httpd.serve_forever, name="danm-apiserver", daemon=True)
        self.thread.start()
        return self

    def stop(self) -> None:
        self.store.close()
        self.httpd.shutdown()
        self.httpd.server_close()
        if self.thread is not None:
            self.thread.join(timeout=10)

    def resource(self, group: str, version: str, plural: str) -> Resource:
        found = self.registry.find(group, version, plural)
        if found is None:
            raise StatusError(404, "NotFound", "the server could not find the requested resource", {})
        return found

    def kubeconfig(self) -> str:
        """A kubeconfig that kubectl, the official client and danm can use."""
        user: JsonObject = {"token": self.token} if self.token else {}
        cluster: JsonObject = {"server": self.url}
        if self.ca_pem:
            cluster["certificate-authority-data"] = base64.b64encode(self.ca_pem).decode()
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "danm", "cluster": cluster}],
            "users": [{"name": "danm-admin", "user": user}],
            "contexts": [{"name": "danm", "context": {"cluster": "danm", "user": "danm-admin"}}],
            "current-context": "danm",
        }
        return json.dumps(config, indent=2) + "\n"

    # -- authentication and authorization

    def user_for(self, authorization: str) -> UserInfo | None:
        """Who a request is; None means its credentials are invalid (401)."""
        if not authorization:
            if self.token:
                return None
            return ANONYMOUS if self.rbac else ADMIN
        if not authorization.startswith("Bearer "):
            return None
        offered = authorization[len("Bearer "):].strip()
        if self.token and offered == self.token:
            return ADMIN
        account = self.service_account_tokens.get(offered)
        if account is not None and self.rbac:
            return service_account_user(account[0], account[1])
        return None if self.token or self.rbac else ADMIN

    def current_authorizer(self) -> Authorizer:
        """RBAC over the stored objects, rebuilt only when one of them changed."""
        resources = [self.resource("rbac.authorization.k8s.io", "v1", plural) for plural in RBAC_RESOURCES]
        snapshots = [self.store.list_objects(resource, ListQuery())[0] for resource in resources]
        key = tuple(
            int(obj["metadata"].get("resourceVersion") or 0) for objects in snapshots for obj in objects
        )
        if self.authorizer is None or key != self.authorizer_key:
            self.authorizer = Authorizer(snapshots[0], snapshots[1], snapshots[2], snapshots[3])
            self.authorizer_key = key
        return self.authorizer

    def authorize(self, user: UserInfo, request: RequestAttributes) -> None:
        if not self.rbac or "system:masters" in user.groups:
            return
        decision = self.current_authorizer().authorize(user, request)
        if not decision.allowed:
            status = forbidden_status(user, request, decision.reason)
            raise StatusError(403, "Forbidden", status["message"], status.get("details") or {})

    # -- what admission needs from the store

    def webhook_configurations(self, phase: str) -> list[JsonObject]:
        plural = "mutatingwebhookconfigurations" if phase == MUTATING else "validatingwebhookconfigurations"
        resource = self.resource("admissionregistration.k8s.io", "v1", plural)
        return self.store.list_objects(resource, ListQuery())[0]

    def namespace_labels(self, name: str) -> dict[str, str] | None:
        found = self.store.find(self.resource("", "v1", "namespaces"), "", name)
        if found is None:
            return None
        labels: dict[str, str] = found["metadata"].get("labels") or {}
        return labels

    def resolve_service(self, namespace: str, name: str, port: int) -> tuple[str, int]:
        """A webhook's ``service:`` reference: the configured map, else the Service's Endpoints."""
        mapped = self.service_map.get((namespace, name))
        if mapped is not None:
            return mapped
        service = self.store.find(self.resource("", "v1", "services"), namespace, name)
        if service is None:
            raise LookupError(f'service "{name}" not found')
        ports = [entry for entry in (service.get("spec") or {}).get("ports") or [] if entry.get("port") == port]
        if not ports:
            raise LookupError(f'service "{name}" has no port {port}')
        target = ports[0].get("targetPort", port)
        endpoints = self.store.find(self.resource("", "v1", "endpoints"), namespace, name)
        for subset in (endpoints or {}).get("subsets") or []:
            addresses = subset.get("addresses") or []
            if not addresses:
                continue
            for endpoint_port in subset.get("ports") or []:
                if endpoint_port.get("port") == target or endpoint_port.get("name") == target or (
                    endpoint_port.get("name", "") == ports[0].get("name", "") and not isinstance(target, int)
                ):
                    return str(addresses[0]["ip"]), int(endpoint_port["port"])
            if isinstance(target, int):
                return str(addresses[0]["ip"]), target
        raise LookupError(f'service "{name}" has no ready endpoints')

    def issue_token(self, namespace: str, account: str) -> JsonObject:
        """The TokenRequest API: a bearer token that authenticates as the ServiceAccount."""
        self.store.get(self.resource("", "v1", "serviceaccounts"), namespace, account)
        token = base64.urlsafe_b64encode(os.urandom(32)).decode().rstrip("=")
        self.service_account_tokens[token] = (namespace, account)
        expires = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + TOKEN_SECONDS))
        return {
            "kind": "TokenRequest",
            "apiVersion": "authentication.k8s.io/v1",
            "metadata": {"name": account, "namespace": namespace, "creationTimestamp": now_rfc3339()},
            "spec": {"audiences": ["https://kubernetes.default.svc"], "expirationSeconds": TOKEN_SECONDS},
            "status": {"token": token, "expirationTimestamp": expires},
        }

    # -- CRDs

    def establish(self, crd: JsonObject) -> None:
        with self.registry_lock:
            for resource in resources_from_crd(crd):
                self.registry.add(resource)

    def forget(self, crd: JsonObject) -> None:
        spec = crd.get("spec") or {}
        group, plural = spec.get("group", ""), (spec.get("names") or {}).get("plural", "")
        with self.registry_lock:
            doomed = [r for r in self.registry.resources.values() if r.group == group and r.plural == plural]
            self.registry.remove_group_resource(group, plural)
        for resource in doomed[:1]:
            items, _, _ = self.store.list_objects(resource, ListQuery())
            for item in items:
                metadata = item["metadata"]
                try:
                    self.store.delete(resource, metadata.get("namespace", ""), metadata["name"])
                except StatusError:
                    pass


def namespace_defaults(obj: JsonObject) -> JsonObject:
    metadata = dict(obj.get("metadata") or {})
    labels = dict(metadata.get("labels") or {})
    labels["kubernetes.io/metadata.name"] = metadata.get("name", "")
    metadata["labels"] = labels
    spec = dict(obj.get("spec") or {})
    spec.setdefault("finalizers", ["kubernetes"])
    return dict(obj, metadata=metadata, spec=spec, status={"phase": "Active"})


def service_defaults(obj: JsonObject) -> JsonObject:
    """What danm relies on: a port's targetPort defaults to its port, protocol to TCP."""
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        return obj
    ports = []
    for port in spec.get("ports") or []:
        port = dict(port)
        port.setdefault("protocol", "TCP")
        port.setdefault("targetPort", port.get("port"))
        ports.append(port)
    spec = dict(spec, ports=ports)
    spec.setdefault("type", "ClusterIP")
    spec.setdefault("sessionAffinity", "None")
    return dict(obj, spec=spec)


MICRO_TIME: Final = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}(Z|[+-]\d{2}:\d{2})$")


def check_lease_times(lease: JsonObject) -> None:
    """Lease times are MicroTime: exactly six fractional digits and a zone, or 400."""
    spec = lease.get("spec") or {}
    for field in ("acquireTime", "renewTime"):
        value = spec.get(field)
        if value is not None and (not isinstance(value, str) or not MICRO_TIME.match(value)):
            raise StatusError(
                400,
                "BadRequest",
                f'Lease in version "v1" cannot be handled as a Lease: parsing time "{value}" as '
                '"2006-01-02T15:04:05.000000Z07:00": cannot parse',
            )


def endpoint_slice_defaults(resource: Resource, slice_: JsonObject) -> JsonObject:
    """EndpointSlices always carry endpoints and ports lists (a null breaks the Python client)."""
    if not slice_.get("addressType"):
        raise invalid(resource, slice_["metadata"].get("name", ""), [{"field": "addressType", "reason": "FieldValueRequired", "message": "Required value"}])
    return dict(slice_, endpoints=slice_.get("endpoints") or [], ports=slice_.get("ports") or [])


def is_true(value: str) -> bool:
    return value in TRUE_WORDS


def age(timestamp: str) -> str:
    """kubectl's short age: 5s, 3m, 2h, 4d."""
    try:
        then = time.mktime(time.strptime(timestamp, "%Y-%m-%dT%H:%M:%SZ")) - time.timezone
    except (ValueError, OverflowError):
        return "<unknown>"
    seconds = max(0, int(time.time() - then))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def jsonpath(obj: JsonObject, path: str) -> Any:
    """The simple JSONPaths of printer columns: .spec.a.b (no filters)."""
    node: Any = obj
    for part in path.strip().lstrip(".").split("."):
        if not part:
            continue
        if not isinstance(node, dict):
            return None
        node = node.get(part)
    return node


def table(resource: Resource, items: list[JsonObject], revision: str) -> JsonObject:
    """meta.k8s.io/v1 Table with the resource's printer columns (and Age)."""
    columns: list[JsonObject] = [{"name": "Name", "type": "string", "format": "name", "description": "Name", "priority": 0}]
    printer = resource.printer_columns or [{"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"}]
    for column in printer:
        columns.append(
            {
                "name": column.get("name", ""),
                "type": "string" if column.get("type") == "date" else column.get("type", "string"),
                "format": column.get("format", ""),
                "description": column.get("description", ""),
                "priority": column.get("priority", 0),
            }
        )
    rows = []
    for item in items:
        cells: list[Any] = [item["metadata"].get("name", "")]
        for column in printer:
            value = jsonpath(item, column.get("jsonPath", ""))
            if column.get("type") == "date":
                cells.append(age(value) if isinstance(value, str) else "<unknown>")
            else:
                cells.append(value if value is not None else "")
        rows.append(
            {
                "cells": cells,
                "object": {
                    "kind": "PartialObjectMetadata",
                    "apiVersion": "meta.k8s.io/v1",
                    "metadata": item["metadata"],
                },
            }
        )
    return {
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": {"resourceVersion": revision},
        "columnDefinitions": columns,
        "rows": rows,
    }


class HttpServer(ThreadingHTTPServer):
    """The listener, carrying the ApiServer its handlers serve."""

    daemon_threads = True
    # socketserver's default backlog of 5 refuses connections under a burst of clients
    request_queue_size = 256

    def __init__(self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler], state: ApiServer) -> None:
        self.state = state
        super().__init__(address, handler)


class Handler(BaseHTTPRequestHandler):
    """One HTTP connection of the API server."""

    protocol_version = "HTTP/1.1"
    # headers and body are two writes: with Nagle, a kept-alive client waits ~40 ms per request
    disable_nagle_algorithm = True
    warnings: list[str]
    user: UserInfo

    @property
    def server_state(self) -> ApiServer:
        server = self.server
        assert isinstance(server, HttpServer)
        return server.state

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
        """Quiet: tests and trials do not want a line per request on stderr."""

    # -- plumbing

    def send_json(self, code: int, body: Any, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(body, separators=(",", ":")).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        for warning in self.warnings:
            self.send_header("Warning", f'299 - "{warning}"')
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def read_body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_REQUEST_BYTES:
            # drain what the client sends, so it reads the 413 instead of a broken pipe
            remaining = min(length, 8 * MAX_REQUEST_BYTES)
            while remaining > 0:
                chunk = self.rfile.read(min(remaining, 1 << 16))
                if not chunk:
                    break
                remaining -= len(chunk)
            self.close_connection = True
            raise StatusError(413, "RequestEntityTooLarge", f"Request entity too large: limit is {MAX_REQUEST_BYTES}")
        return self.rfile.read(length) if length > 0 else b""

    def decode_body(self, resource: Resource | None = None) -> Any:
        content_type = (self.headers.get("Content-Type") or "application/json").split(";")[0].strip()
        body = self.read_body()
        if self.command in ("POST", "PUT") and body and content_type not in ("application/json", "*/*", ""):
            # protobuf and YAML bodies: client-go falls back to JSON on 415
            raise StatusError(
                415,
                "UnsupportedMediaType",
                'the body of the request was in an unknown format - accepted media types include: application/json',
            )
        try:
            return json.loads(body) if body else None
        except (ValueError, UnicodeDecodeError) as error:
            kind = resource.kind if resource is not None else "object"
            raise StatusError(400, "BadRequest", f'{kind} in version "v1" cannot be handled as a {kind}: {error}') from None

    def handle_request(self) -> None:
        self.warnings: list[str] = []
        try:
            self.authenticate()
            self.dispatch()
        except StatusError as error:
            self.send_json(error.code, error.status())
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
        except Exception as crash:  # a bug must not kill the connection silently
            failure = StatusError(500, "InternalError", f"Internal error occurred: {crash!r}")
            self.send_json(500, failure.status())

    # http.server looks up one method per HTTP verb
    def do_GET(self) -> None:
        self.handle_request()

    def do_HEAD(self) -> None:
        self.handle_request()

    def do_POST(self) -> None:
        self.handle_request()

    def do_PUT(self) -> None:
        self.handle_request()

    def do_PATCH(self) -> None:
        self.handle_request()

    def do_DELETE(self) -> None:
        self.handle_request()

    def authenticate(self) -> None:
        user = self.server_state.user_for(self.headers.get("Authorization", ""))
        if user is None:
            self.read_body()
            raise StatusError(401, "Unauthorized", "Unauthorized")
        self.user = user

    # -- routing

    def dispatch(self) -> None:
        parsed = urllib.parse.urlsplit(self.path)
        path = parsed.path.rstrip("/") or "/"  # the Python client asks for "/version/"
        query = {key: values[-1] for key, values in urllib.parse.parse_qs(parsed.query, keep_blank_values=True).items()}
        parts = [urllib.parse.unquote(part) for part in parsed.path.split("/") if part]
        state = self.server_state
        route = self.route(parts)
        if route is None:
            state.authorize(self.user, non_resource_request(self.command.lower(), path))
        if self.command in ("GET", "HEAD") and route is None:
            if path in ("/healthz", "/readyz", "/livez"):
                self.send_response(200)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")
                return
            if path == "/version":
                self.send_json(200, VERSION_INFO)
                return
            if parts == ["api"]:
                host, port = state.address
                self.send_json(200, state.registry.api_versions(f"{host}:{port}"))
                return
            if parts == ["apis"]:
                self.send_json(200, state.registry.api_group_list())
                return
            if len(parts) == 2 and parts[0] == "apis":
                self.send_json(200, state.registry.api_group(parts[1]))
                return
            if len(parts) == 2 and parts[0] == "api":
                self.send_json(200, state.registry.resource_list("", parts[1]))
                return
            if len(parts) == 3 and parts[0] == "apis":
                self.send_json(200, state.registry.resource_list(parts[1], parts[2]))
                return
        if route is None:
            self.read_body()
            raise StatusError(404, "NotFound", "the server could not find the requested resource", {})
        state.authorize(self.user, self.attributes(route, query))
        self.serve(route, query)

    def attributes(self, route: Route, query: dict[str, str]) -> RequestAttributes:
        method = self.command
        if route.name:
            verb = {"GET": "get", "HEAD": "get", "PUT": "update", "PATCH": "patch", "DELETE": "delete", "POST": "create"}[method]
        elif method in ("GET", "HEAD"):
            verb = "watch" if route.watch_path or is_true(query.get("watch", "")) else "list"
        else:
            verb = {"POST": "create", "DELETE": "deletecollection"}.get(method, method.lower())
        resource = route.resource
        return RequestAttributes(
            verb,
            api_group=resource.group,
            resource=resource.plural,
            subresource=route.subresource,
            namespace=route.namespace,
            name=route.name,
        )

    def route(self, parts: list[str]) -> Route | None:
        if len(parts) >= 3 and parts[0] == "api":
            group, version, rest = "", parts[1], parts[2:]
        elif len(parts) >= 4 and parts[0] == "apis":
            group, version, rest = parts[1], parts[2], parts[3:]
        else:
            return None
        watch_path = bool(rest) and rest[0] == "watch"
        if watch_path:
            rest = rest[1:]
        namespace = ""
        if len(rest) >= 3 and rest[0] == "namespaces" and rest[2] not in ("status", "finalize"):
            namespace, rest = rest[1], rest[2:]
        if not rest or len(rest) > 3:
            return None
        resource = self.server_state.registry.find(group, version, rest[0])
        if resource is None:
            return None
        if namespace and not resource.namespaced:
            return None
        name = rest[1] if len(rest) > 1 else ""
        subresource = rest[2] if len(rest) > 2 else ""
        if subresource and not (
            (subresource == "status" and resource.status_subresource)
            or (subresource == "token" and resource.plural == "serviceaccounts" and not resource.group)
        ):
            return None
        return Route(resource, namespace, name, subresource, watch_path)

    def serve(self, route: Route, query: dict[str, str]) -> None:
        method = self.command
        if route.watch_path:
            if method != "GET":
                raise StatusError(405, "MethodNotAllowed", f'{method} is not supported')
            if route.name:
                query["fieldSelector"] = ",".join(
                    part for part in (query.get("fieldSelector", ""), f"metadata.name={route.name}") if part
                )
            self.watch(route, query)
            return
        if not route.name:
            if method == "GET":
                if is_true(query.get("watch", "")):
                    self.watch(route, query)
                else:
                    self.list(route, query)
            elif method == "POST":
                self.create(route, query)
            elif method == "DELETE":
                self.delete_collection(route, query)
            else:
                raise StatusError(405, "MethodNotAllowed", f'{method} is not supported on resources of kind "{route.resource.group_resource}"')
            return
        if route.subresource == "token":
            if method != "POST":
                raise StatusError(405, "MethodNotAllowed", f"{method} is not supported on serviceaccounts/token")
            self.read_body()
            self.send_json(201, self.server_state.issue_token(route.namespace, route.name))
            return
        if method in ("GET", "HEAD"):
            self.read_body()
            self.send_json(200, self.server_state.store.get(route.resource, route.namespace, route.name))
        elif method == "PUT":
            self.replace(route, query)
        elif method == "PATCH":
            self.patch(route, query)
        elif method == "DELETE":
            self.delete(route, query)
        else:
            raise StatusError(405, "MethodNotAllowed", f'{method} is not supported on resources of kind "{route.resource.group_resource}"')

    # -- LIST and WATCH

    def query_of(self, route: Route, query: dict[str, str]) -> ListQuery:
        try:
            labels = parse_selector(query.get("labelSelector", ""))
        except SelectorError as error:
            raise StatusError(400, "BadRequest", f"unable to parse requirement: {error}") from None
        fields = parse_field_selector(query.get("fieldSelector", ""), route.resource.field_labels)
        return ListQuery(route.namespace, labels, fields)

    def list(self, route: Route, query: dict[str, str]) -> None:
        self.read_body()
        resource = route.resource
        selection = self.query_of(route, query)
        version = query.get("resourceVersion", "")
        if query.get("resourceVersionMatch") and not version:
            raise invalid(resource, "", [{"field": "resourceVersionMatch", "reason": "FieldValueForbidden", "message": "Forbidden: resourceVersionMatch is forbidden unless resourceVersion is provided"}])
        try:
            limit = int(query.get("limit") or 0)
        except ValueError:
            raise StatusError(400, "BadRequest", f"invalid limit: {query.get('limit')!r}") from None
        store = self.server_state.store
        if limit and version not in ("", "0") and version != str(store.revision) and not query.get("continue"):
            raise StatusError(410, "Expired", "The resourceVersion for the provided list is too old.")
        items, revision, token = store.list_objects(resource, selection, limit, query.get("continue", ""))
        if "as=Table" in self.headers.get("Accept", "") and resource.schema is not None:
            self.send_json(200, table(resource, items, revision))
            return
        metadata: JsonObject = {"resourceVersion": revision}
        if token:
            metadata["continue"] = token
        self.send_json(
            200,
            {"kind": resource.list_kind, "apiVersion": resource.api_version, "metadata": metadata, "items": items},
        )

    def watch(self, route: Route, query: dict[str, str]) -> None:
        self.read_body()
        resource = route.resource
        if is_true(query.get("sendInitialEvents", "")):
            raise invalid(resource, "", [{"field": "sendInitialEvents", "reason": "FieldValueForbidden", "message": "Forbidden: sendInitialEvents is not supported by this server; list, then watch"}])
        selection = self.query_of(route, query)
        store = self.server_state.store
        version = query.get("resourceVersion", "")
        timeout = float(query.get("timeoutSeconds") or DEFAULT_WATCH_SECONDS)
        bookmarks = is_true(query.get("allowWatchBookmarks", ""))
        as_table = "as=Table" in self.headers.get("Accept", "") and resource.schema is not None
        deadline = time.monotonic() + timeout
        initial: list[JsonObject] = []
        if version in ("", "0"):
            initial, current, _ = store.list_objects(resource, selection)
            since = int(current)
        else:
            try:
                since = int(version)
            except ValueError:
                raise StatusError(400, "BadRequest", f"invalid resource version: {version!r}") from None
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        self.wfile.flush()
        for obj in initial:
            self.send_event("ADDED", obj, resource, as_table)
        last_bookmark = time.monotonic()
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or store.closed:
                break
            try:
                events = store.events_since(since, min(remaining, 1.0))
            except StatusError as error:
                self.send_chunk({"type": "ERROR", "object": error.status()})
                break
            for event in events:
                since = event.revision
                if event.resource != resource.group_resource:
                    continue
                kind = watch_event_type(event, selection)
                if kind:
                    self.send_event(kind, event.object(), resource, as_table)
            if bookmarks and time.monotonic() - last_bookmark >= BOOKMARK_SECONDS:
                self.send_bookmark(resource, since)
                last_bookmark = time.monotonic()
        if bookmarks:
            self.send_bookmark(resource, since)
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    def send_event(self, kind: str, obj: JsonObject, resource: Resource, as_table: bool) -> None:
        shown = table(resource, [obj], obj["metadata"].get("resourceVersion", "")) if as_table else obj
        self.send_chunk({"type": kind, "object": shown})

    def send_bookmark(self, resource: Resource, revision: int) -> None:
        self.send_chunk(
            {
                "type": "BOOKMARK",
                "object": {"kind": resource.kind, "apiVersion": resource.api_version, "metadata": {"resourceVersion": str(revision)}},
            }
        )

    def send_chunk(self, event: JsonObject) -> None:
        data = json.dumps(event, separators=(",", ":")).encode() + b"\n"
        self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        self.wfile.flush()

    # -- writes

    def prepare(self, route: Route, obj: Any, for_update: bool) -> JsonObject:
        """Defaults, namespace/name checks, pruning and validation of a submitted object."""
        resource = route.resource
        if not isinstance(obj, dict):
            raise StatusError(400, "BadRequest", f"the body of the request must be a {resource.kind} object")
        metadata = dict(obj.get("metadata") or {})
        if not isinstance(obj.get("metadata", {}), dict):
            raise StatusError(400, "BadRequest", "metadata must be an object")
        if resource.namespaced:
            body_namespace = metadata.get("namespace", "")
            if body_namespace and body_namespace != route.namespace:
                raise StatusError(400, "BadRequest", "the namespace of the provided object does not match the namespace sent on the request")
            metadata["namespace"] = route.namespace
        else:
            metadata.pop("namespace", None)
        if for_update and metadata.get("name", route.name) != route.name:
            raise StatusError(400, "BadRequest", f"the name of the object ({metadata.get('name')}) does not match the name on the URL ({route.name})")
        if for_update:
            metadata["name"] = route.name
        prepared: JsonObject = dict(obj, metadata=metadata)
        return self.defaulted_and_valid(route, prepared, for_update)

    def defaulted_and_valid(self, route: Route, obj: JsonObject, for_update: bool) -> JsonObject:
        resource = route.resource
        metadata = obj["metadata"]
        kind = obj.get("kind")
        if kind and kind != resource.kind:
            raise StatusError(400, "BadRequest", f'{kind} in version "{resource.version}" cannot be handled as a {resource.kind}: kind mismatch')
        if resource.plural == "services" and not resource.group:
            obj = service_defaults(obj)
        if resource.plural == "namespaces" and not resource.group and not for_update:
            obj = namespace_defaults(obj)
        if resource.group == "coordination.k8s.io":
            check_lease_times(obj)
        if resource.group == "discovery.k8s.io":
            obj = endpoint_slice_defaults(resource, obj)
        if resource.schema is not None:
            pruned, dropped = prune(resource.schema, obj)
            self.warnings.extend(f'unknown field \\"{path}\\"' for path in dropped)
            obj = apply_defaults(resource.schema, pruned)
            schema_causes = validate(resource.schema, obj)
            if schema_causes:
                raise invalid(resource, metadata.get("name", ""), [cause.as_status_cause() for cause in schema_causes])
        causes = validate_metadata(resource, obj)
        if causes:
            raise invalid(resource, metadata.get("name", ""), causes)
        if resource.group == "apiextensions.k8s.io":
            self.check_crd(obj)
        return obj

    def check_crd(self, crd: JsonObject) -> None:
        resource = self.server_state.resource("apiextensions.k8s.io", "v1", "customresourcedefinitions")
        spec = crd.get("spec") or {}
        names = spec.get("names") or {}
        name = crd["metadata"].get("name", "")
        causes: list[JsonObject] = []
        expected = f"{names.get('plural', '')}.{spec.get('group', '')}"
        if name != expected:
            causes.append({"field": "metadata.name", "reason": "FieldValueInvalid", "message": f'Invalid value: "{name}": must be spec.names.plural+"."+spec.group'})
        if spec.get("scope") not in ("Namespaced", "Cluster"):
            causes.append({"field": "spec.scope", "reason": "FieldValueNotSupported", "message": f'Unsupported value: "{spec.get("scope")}": supported values: "Cluster", "Namespaced"'})
        versions = spec.get("versions") or []
        if sum(1 for version in versions if version.get("storage")) != 1:
            causes.append({"field": "spec.versions", "reason": "FieldValueInvalid", "message": "Invalid value: must have exactly one version marked as storage version"})
        for index, version in enumerate(versions):
            schema = (version.get("schema") or {}).get("openAPIV3Schema")
            root = f"spec.versions[{index}].schema.openAPIV3Schema"
            if not isinstance(schema, dict):
                causes.append({"field": root, "reason": "FieldValueRequired", "message": "Required value: schemas are required"})
                continue
            causes.extend(cause.as_status_cause() for cause in structural_causes(schema, root))
        if causes:
            raise invalid(resource, name, causes)

    def ensure_namespace(self, route: Route) -> None:
        if not route.resource.namespaced:
            return
        state = self.server_state
        found = state.store.find(state.resource("", "v1", "namespaces"), "", route.namespace)
        if found is None:
            raise StatusError(404, "NotFound", f'namespaces "{route.namespace}" not found', {"name": route.namespace, "kind": "namespaces"})
        if (found.get("status") or {}).get("phase") == "Terminating":
            raise StatusError(
                403,
                "Forbidden",
                f"{route.resource.group_resource} is forbidden: unable to create new content in namespace {route.namespace} because it is being terminated",
            )

    # -- admission: webhooks run outside the store's lock (they may call back into the server)

    def admit(
        self,
        operation: str,
        route: Route,
        obj: JsonObject | None,
        old: JsonObject | None,
        dry_run: bool,
    ) -> JsonObject | None:
        """Mutating webhooks, re-validation, then validating webhooks; returns the final object."""
        state = self.server_state
        resource = route.resource
        if is_exempt(resource):
            return obj
        namespace = route.name if resource.plural == "namespaces" and not resource.group else route.namespace
        attributes = AdmissionAttributes(
            operation,
            resource,
            namespace,
            route.name or ((obj or {}).get("metadata") or {}).get("name", ""),
            obj,
            old,
            subresource=route.subresource,
            dry_run=dry_run,
            user=self.user,
            warnings=[],
        )
        try:
            mutated = state.admission.mutate(attributes)
            if mutated is not None and mutated is not obj:
                # CRs are pruned, defaulted and validated again after mutation
                mutated = self.defaulted_and_valid(route, mutated, operation != "CREATE")
                attributes.obj = mutated
            state.admission.validate(attributes)
        finally:
            self.warnings.extend(attributes.warnings)
        return attributes.obj

    def check_configuration(self, route: Route, obj: JsonObject) -> JsonObject:
        """Webhook configurations get kube's v1 defaults and validation when written."""
        resource = route.resource
        if resource.group != "admissionregistration.k8s.io":
            return obj
        mutating = resource.kind == "MutatingWebhookConfiguration"
        defaulted = configuration_defaults(obj, mutating)
        causes = configuration_causes(defaulted, mutating, allow_http=True)
        if causes:
            raise invalid(resource, obj["metadata"].get("name", ""), causes)
        return defaulted

    # -- writes

    def create(self, route: Route, query: dict[str, str]) -> None:
        resource = route.resource
        obj = self.check_configuration(route, self.prepare(route, self.decode_body(resource), for_update=False))
        self.ensure_namespace(route)
        dry_run = query.get("dryRun") == "All"
        if resource.status_subresource:
            obj.pop("status", None)
        if resource.plural == "customresourcedefinitions":
            obj["status"] = crd_status(obj, now_rfc3339())
        if resource.plural == "namespaces" and not resource.group:
            obj["status"] = {"phase": "Active"}
        admitted = self.admit("CREATE", route, obj, None, dry_run)
        stored = self.server_state.store.create(resource, admitted or obj, dry_run)
        if resource.plural == "customresourcedefinitions" and not dry_run:
            self.server_state.establish(stored)
        self.send_json(201, stored)

    def write_update(self, route: Route, query: dict[str, str], build: Callable[[JsonObject], JsonObject], retry: bool) -> None:
        """Read, build the new object, admit it, then compare-and-swap on the version read.

        ``build`` maps the current object to the wanted one (it raises 409 for a stale
        resourceVersion the client sent). A change by someone else in between is retried when
        the client pinned no version (PATCH, unconditional PUT), else it is a 409.
        """
        resource = route.resource
        store = self.server_state.store
        dry_run = query.get("dryRun") == "All"
        for _ in range(20):
            current = store.get(resource, route.namespace, route.name)
            wanted = self.check_configuration(route, merge_subresource(route, current, build(current)))
            admitted = self.admit("UPDATE", route, wanted, current, dry_run) or wanted
            read_version = current["metadata"].get("resourceVersion")

            def swap(latest: JsonObject, expected: str | None = read_version, new: JsonObject = admitted) -> JsonObject:
                if latest["metadata"].get("resourceVersion") != expected:
                    raise conflict(resource, route.name)
                return new

            try:
                stored, _ = store.update(resource, route.namespace, route.name, swap, dry_run)
            except StatusError as error:
                if error.code == 409 and retry:
                    continue
                raise
            if resource.plural == "customresourcedefinitions":
                self.server_state.establish(stored)
            self.send_json(200, stored)
            return
        raise conflict(resource, route.name)

    def replace(self, route: Route, query: dict[str, str]) -> None:
        resource = route.resource
        obj = self.prepare(route, self.decode_body(resource), for_update=True)
        offered = obj["metadata"].get("resourceVersion", "")
        store = self.server_state.store
        if resource.plural == "leases" and store.find(resource, route.namespace, route.name) is None:
            # create-on-update, which leader election relies on (201)
            self.ensure_namespace(route)
            metadata = dict(obj["metadata"])
            metadata.pop("resourceVersion", None)
            self.send_json(201, store.create(resource, dict(obj, metadata=metadata), query.get("dryRun") == "All"))
            return
        if not offered and not resource.unconditional_update:
            raise invalid(resource, route.name, [{"field": "metadata.resourceVersion", "reason": "FieldValueInvalid", "message": "Invalid value: 0x0: must be specified for an update"}])

        def build(current: JsonObject) -> JsonObject:
            if offered and offered != current["metadata"].get("resourceVersion"):
                raise conflict(resource, route.name)
            return obj

        self.write_update(route, query, build, retry=not offered)

    def patch(self, route: Route, query: dict[str, str]) -> None:
        resource = route.resource
        content_type = (self.headers.get("Content-Type") or "").split(";")[0].strip()
        patch = self.decode_body(resource)
        accepted = [JSON_PATCH, MERGE_PATCH] if resource.schema is not None else [JSON_PATCH, MERGE_PATCH, STRATEGIC_PATCH]
        if content_type not in accepted:
            raise StatusError(
                415,
                "UnsupportedMediaType",
                "the body of the request was in an unknown format - accepted media types include: " + ", ".join(accepted),
            )
        def build(current: JsonObject) -> JsonObject:
            try:
                if content_type == JSON_PATCH:
                    if not isinstance(patch, list):
                        raise StatusError(400, "BadRequest", "json patch must be a list of operations")
                    patched = apply_json_patch(current, patch)
                elif content_type == STRATEGIC_PATCH:
                    patched = apply_strategic_merge_patch(current, patch, resource.kind)
                else:
                    patched = apply_merge_patch(current, patch)
            # distinct names: mypyc types an except variable once per function
            except StrategicMergePatchError as strategic_error:
                reason = {400: "BadRequest", 422: "Invalid"}.get(strategic_error.status, "InternalError")
                raise StatusError(strategic_error.status, reason, str(strategic_error)) from None
            except PatchError as patch_error:
                code = 422 if patch_error.test_failed else 400
                raise StatusError(code, "Invalid" if code == 422 else "BadRequest", str(patch_error)) from None
            offered = (patched.get("metadata") or {}).get("resourceVersion", "")
            if offered and offered != current["metadata"].get("resourceVersion"):
                raise conflict(resource, route.name)
            return self.prepare(route, patched, for_update=True)

        self.write_update(route, query, build, retry=True)

    def delete(self, route: Route, query: dict[str, str]) -> None:
        options = self.decode_body(route.resource) or {}
        preconditions = options.get("preconditions") or {} if isinstance(options, dict) else {}
        dry_run = query.get("dryRun") == "All" or (isinstance(options, dict) and "All" in (options.get("dryRun") or []))
        state = self.server_state
        resource = route.resource
        current = state.store.get(resource, route.namespace, route.name)
        self.admit("DELETE", route, None, current, dry_run)
        if resource.plural == "namespaces" and not resource.group and not dry_run:
            self.delete_namespace(route.name)
            return
        stored, gone = state.store.delete(
            resource,
            route.namespace,
            route.name,
            preconditions.get("uid", "") or "",
            preconditions.get("resourceVersion", "") or "",
            dry_run,
        )
        if gone and resource.plural == "customresourcedefinitions" and not dry_run:
            state.forget(stored)
        self.send_json(200, stored)

    def delete_namespace(self, name: str) -> None:
        state = self.server_state
        namespaces = state.resource("", "v1", "namespaces")
        current = state.store.get(namespaces, "", name)

        def terminating(obj: JsonObject) -> JsonObject:
            return dict(obj, status={"phase": "Terminating"})

        state.store.update(namespaces, "", name, terminating)
        for resource in list(state.registry.resources.values()):
            if not resource.namespaced:
                continue
            items, _, _ = state.store.list_objects(resource, ListQuery(name))
            for item in items:
                try:
                    state.store.delete(resource, name, item["metadata"]["name"])
                except StatusError:
                    pass
        remaining = any(
            state.store.list_objects(resource, ListQuery(name))[0]
            for resource in state.registry.resources.values()
            if resource.namespaced
        )
        if not remaining:
            gone, _ = state.store.delete(namespaces, "", name)
            self.send_json(200, gone)
            return
        self.send_json(200, state.store.find(namespaces, "", name) or current)

    def delete_collection(self, route: Route, query: dict[str, str]) -> None:
        self.read_body()
        selection = self.query_of(route, query)
        store = self.server_state.store
        items, revision, _ = store.list_objects(route.resource, selection)
        deleted = []
        for item in items:
            metadata = item["metadata"]
            try:
                stored, _ = store.delete(route.resource, metadata.get("namespace", ""), metadata["name"], dry_run=query.get("dryRun") == "All")
                deleted.append(stored)
            except StatusError:
                continue
        resource = route.resource
        self.send_json(200, {"kind": resource.list_kind, "apiVersion": resource.api_version, "metadata": {"resourceVersion": revision}, "items": deleted})


def conflict(resource: Resource, name: str) -> StatusError:
    return StatusError(
        409,
        "Conflict",
        f'Operation cannot be fulfilled on {resource.group_resource} "{name}": the object has been modified; '
        "please apply your changes to the latest version and try again",
        resource.details(name),
    )


def merge_subresource(route: Route, current: JsonObject, wanted: JsonObject) -> JsonObject:
    """The status subresource takes only status; the main endpoint keeps the stored status."""
    if not route.resource.status_subresource:
        return wanted
    if route.subresource == "status":
        # Pod status writes keep metadata changes (annotations written through pods/status)
        if route.resource.plural == "pods" and not route.resource.group:
            metadata = dict(current["metadata"])
            for key in ("labels", "annotations"):
                if key in wanted.get("metadata", {}):
                    metadata[key] = wanted["metadata"][key]
            return dict(current, metadata=metadata, status=wanted.get("status"))
        result = dict(current)
        if "status" in wanted:
            result["status"] = wanted["status"]
        else:
            result.pop("status", None)
        return result
    result = dict(wanted)
    if "status" in current:
        result["status"] = current["status"]
    else:
        result.pop("status", None)
    return result


def load_crds(server: ApiServer, directory: str) -> int:
    """Apply every CRD manifest (YAML or JSON) of a directory; returns how many were applied."""
    import os

    import yaml

    applied = 0
    crds = server.resource("apiextensions.k8s.io", "v1", "customresourcedefinitions")
    for name in sorted(os.listdir(directory)):
        if not name.endswith((".yaml", ".yml", ".json")):
            continue
        with open(os.path.join(directory, name), encoding="utf-8") as handle:
            documents = list(yaml.safe_load_all(handle))
        for document in documents:
            if not isinstance(document, dict) or document.get("kind") != "CustomResourceDefinition":
                continue
            document = dict(document)
            document.pop("status", None)
            document["status"] = crd_status(document, now_rfc3339())
            stored = server.store.create(crds, document)
            server.establish(stored)
            applied += 1
    return applied


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        port: int = probe.getsockname()[1]
        return port


def enable_tls(httpd: ThreadingHTTPServer, host: str) -> bytes:
    """Serve HTTPS with a fresh self-signed CA and a server certificate for host, returns the CA PEM."""
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = datetime.datetime.now(datetime.timezone.utc)
    lifetime = datetime.timedelta(days=365)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "danm-apiserver-ca")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + lifetime)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    names: list[x509.GeneralName] = [x509.DNSName("localhost"), x509.DNSName("kubernetes.default.svc")]
    for address in {host, "127.0.0.1", "::1"}:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(address)))
        except ValueError:
            names.append(x509.DNSName(address))
    key = ec.generate_private_key(ec.SECP256R1())
    certificate = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "danm-apiserver")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + lifetime)
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    with tempfile.TemporaryDirectory() as directory:
        chain = os.path.join(directory, "server.pem")
        with open(chain, "wb") as handle:
            handle.write(certificate.public_bytes(serialization.Encoding.PEM))
            handle.write(
                key.private_bytes(
                    serialization.Encoding.PEM,
                    serialization.PrivateFormat.PKCS8,
                    serialization.NoEncryption(),
                )
            )
        context.load_cert_chain(chain)
    httpd.socket = context.wrap_socket(httpd.socket, server_side=True)
    return ca.public_bytes(serialization.Encoding.PEM)
