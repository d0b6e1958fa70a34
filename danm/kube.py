"""danm's Kubernetes API client: configuration, typed verbs, watches, errors and retries.

Every danm role reaches the API through this module, and the CNI plugin imports it on every pod
start, so it is lean: HTTP/1.1 is spoken directly over ``socket`` (``http.client`` would pull in
the ``email`` package), ``ssl`` is imported on the first HTTPS connection, PyYAML only for a
kubeconfig that is not JSON, and the ``kubernetes`` package only for ``auth-provider: oidc``
users. Objects are decoded with msgspec into the Structs of ``danm.types`` (or into plain dicts
for objects danm does not model), with one cached decoder per type.

Writes follow danm's policy (``danm.patch``): objects danm did not create are changed with
``apply_change``, a JSON Patch of the modelled fields guarded by the resourceVersion read;
``update`` (PUT) is for objects danm creates and fully models (DanmEps).

Retries. A call is retried, with exponential backoff and jitter, at most ``retries`` times and
never past the caller's ``deadline`` (a ``time.monotonic()`` value; DeadlineExceeded instead):

- connection failures before the request was sent (refused, unreachable, connect timeout): any
  verb, since the server cannot have seen the request;
- 429 Too Many Requests, and any 5xx carrying Retry-After: any verb, after Retry-After seconds
  (the server says the request was not processed and may be repeated);
- 5xx without Retry-After, and transport failures after the request was sent (reset, timeout
  waiting for the answer, malformed answer): only replay-safe requests, because the request may
  have been applied. Replay-safe are GET, PUT and DELETE, and a PATCH guarded by
  ``metadata.resourceVersion`` (a repeat of an applied guarded write fails with 409 Conflict
  instead of applying twice). POST (create) and unguarded patches are not retried then;
- a kept-alive connection the server closed while idle is detected before reuse and replaced;
  if it dies on the request anyway (nothing answered), a replay-safe request is resent at once;
- 401 Unauthorized: credentials that can change (a token file, an exec plugin, OIDC) are reloaded
  once and the request repeated if the token changed;
- TLS certificate verification failures are never retried.
"""

from __future__ import annotations

import builtins
import os
import select
import socket
import threading
import time
from collections.abc import Iterator, Mapping
from typing import Any, Final, Generic, TypeVar

import msgspec

from danm import __version__
from danm.errors import DanmError

T = TypeVar("T")
S = TypeVar("S", bound=msgspec.Struct)

JsonObject = dict[str, Any]

JSON: Final = "application/json"
JSON_PATCH: Final = "application/json-patch+json"
MERGE_PATCH: Final = "application/merge-patch+json"
STRATEGIC_MERGE_PATCH: Final = "application/strategic-merge-patch+json"

SERVICEACCOUNT_DIR: Final = "/var/run/secrets/kubernetes.io/serviceaccount"
USER_AGENT: Final = f"danm/{__version__}"
# Re-read a token file at most this often (and at once after a 401): rotated tokens keep working.
TOKEN_FILE_REFRESH_SECONDS: Final = 60.0
# Refresh exec/OIDC tokens this long before they expire.
EXPIRY_MARGIN_SECONDS: Final = 10.0
DEFAULT_TIMEOUT: Final = 30.0
DEFAULT_RETRIES: Final = 4
DEFAULT_BACKOFF: Final = 0.2
MAX_BACKOFF: Final = 5.0
MAX_RETRY_AFTER: Final = 60.0
# Server-side duration of one watch request; the watch is resumed from the last resourceVersion.
DEFAULT_WATCH_SECONDS: Final = 300
# How often a watch checks its stop event while the stream is quiet.
STOP_POLL_SECONDS: Final = 0.2
MAX_IDLE_CONNECTIONS: Final = 4
MAX_IDLE_SECONDS: Final = 60.0
MAX_HEADER_LINE: Final = 65536
MAX_HEADERS: Final = 200
RECEIVE_SIZE: Final = 262144
DEFAULT_PAGE_SIZE: Final = 500

# Watch event types; SYNC and LISTED are list_and_watch's own (see there).
ADDED: Final = "ADDED"
MODIFIED: Final = "MODIFIED"
DELETED: Final = "DELETED"
BOOKMARK: Final = "BOOKMARK"
ERROR: Final = "ERROR"
SYNC: Final = "SYNC"
LISTED: Final = "LISTED"
_BROKEN: Final = "!broken"

_IDEMPOTENT: Final = ("GET", "HEAD", "PUT", "DELETE")
_QUICKACK: Final[int] = int(getattr(socket, "TCP_QUICKACK", 0))
_UNRESERVED: Final = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
_QUOTED: Final = [chr(byte) if byte in _UNRESERVED else f"%{byte:02X}" for byte in range(256)]


# --------------------------------------------------------------------------------------------
# Errors


class KubeError(DanmError):
    """Root of everything this module raises on purpose."""


class ConfigError(KubeError):
    """No usable configuration: missing kubeconfig, context, server or credentials."""


class ConnectionFailed(KubeError):
    """The API could not be reached or the exchange broke (after the retries allowed)."""

    def __init__(self, message: str, attempts: int = 1) -> None:
        super().__init__(message)
        self.attempts = attempts


class DeadlineExceeded(KubeError):
    """The caller's deadline passed before the call succeeded; no further attempt was made."""


class ApiError(KubeError):
    """The API answered with an error Status. Subclasses are keyed by HTTP code (and reason)."""

    def __init__(
        self,
        code: int,
        reason: str,
        message: str,
        status: JsonObject | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(f"{code} {reason}: {message}")
        self.code = code
        self.reason = reason
        self.message = message
        self.status: JsonObject = status if status is not None else {}
        self.retry_after = retry_after


class BadRequest(ApiError):
    """400"""


class Unauthorized(ApiError):
    """401: missing or invalid credentials."""


class Forbidden(ApiError):
    """403: authenticated, but RBAC (or a terminating namespace) refuses."""


class NotFound(ApiError):
    """404"""


class Conflict(ApiError):
    """409 reason Conflict: a stale resourceVersion (or a failed delete precondition). Re-read."""


class AlreadyExists(ApiError):
    """409 reason AlreadyExists: a create of a name that exists. Not a Conflict subclass."""


class Gone(ApiError):
    """410 (reason Expired or Gone): a watch or continue token older than the server keeps."""


class Invalid(ApiError):
    """422: validation failed (also a failed JSON Patch ``test`` operation)."""


class TooManyRequests(ApiError):
    """429: throttled by API priority and fairness; ``retry_after`` says when to come back."""


class ServerError(ApiError):
    """5xx"""


_ERRORS_BY_CODE: Final[dict[int, type[ApiError]]] = {
    400: BadRequest,
    401: Unauthorized,
    403: Forbidden,
    404: NotFound,
    410: Gone,
    422: Invalid,
    429: TooManyRequests,
}


def error_for(code: int, status: JsonObject, retry_after: float | None = None) -> ApiError:
    """The typed error for an HTTP code and its decoded Status; 409s are told apart by reason."""
    reason = str(status.get("reason") or "")
    message = str(status.get("message") or "")
    if code == 409:
        if reason == "AlreadyExists":
            return AlreadyExists(code, reason, message, status, retry_after)
        return Conflict(code, reason or "Conflict", message, status, retry_after)
    if code >= 500:
        return ServerError(code, reason or "InternalError", message, status, retry_after)
    error_class = _ERRORS_BY_CODE.get(code, ApiError)
    return error_class(code, reason, message, status, retry_after)


# --------------------------------------------------------------------------------------------
# Decoding


_DECODERS: dict[object, Any] = {}
_RAW_MAP: Final = msgspec.json.Decoder(dict[str, msgspec.Raw])
_RAW_LIST: Final = msgspec.json.Decoder(builtins.list[msgspec.Raw])
_ANY_MAP: Final = msgspec.json.Decoder(dict[str, Any])
_STRING: Final = msgspec.json.Decoder(str)
_LIST_OF: Any = builtins.list


def decoder(kind: type[T]) -> msgspec.json.Decoder[T]:
    """The cached msgspec JSON decoder for a type (a Struct, ``dict``, ...)."""
    found = _DECODERS.get(kind)
    if found is None:
        found = msgspec.json.Decoder(kind)
        _DECODERS[kind] = found
    result: msgspec.json.Decoder[T] = found
    return result


def _list_decoder(kind: type[T]) -> msgspec.json.Decoder[builtins.list[T]]:
    key = (builtins.list, kind)
    found = _DECODERS.get(key)
    if found is None:
        found = msgspec.json.Decoder(_LIST_OF[kind])
        _DECODERS[key] = found
    result: msgspec.json.Decoder[builtins.list[T]] = found
    return result


def _raw_string(fields: dict[str, msgspec.Raw], key: str) -> str:
    raw = fields.get(key)
    if raw is None:
        return ""
    try:
        return _STRING.decode(raw)
    except msgspec.DecodeError:
        return ""


def raw_identity(raw: msgspec.Raw | bytes) -> tuple[str, str, str]:
    """(namespace, name, resourceVersion) of an encoded object, without decoding the rest."""
    try:
        fields = _RAW_MAP.decode(raw)
        metadata = fields.get("metadata")
        if metadata is None:
            return "", "", ""
        meta = _RAW_MAP.decode(metadata)
    except msgspec.DecodeError:
        return "", "", ""
    return _raw_string(meta, "namespace"), _raw_string(meta, "name"), _raw_string(meta, "resourceVersion")


def _metadata_field(obj: object, wire_name: str, attribute: str) -> str:
    """A metadata string of a Struct (``obj.metadata.<attribute>``) or dict (wire name)."""
    if isinstance(obj, dict):
        metadata = obj.get("metadata")
        if isinstance(metadata, dict):
            return str(metadata.get(wire_name) or "")
        return ""
    metadata_object = getattr(obj, "metadata", None)
    if metadata_object is None:
        return ""
    if isinstance(metadata_object, dict):
        return str(metadata_object.get(wire_name) or "")
    return str(getattr(metadata_object, attribute, "") or "")


def _decode_status(body: bytes, code: int, phrase: str) -> JsonObject:
    try:
        status = _ANY_MAP.decode(body)
    except msgspec.DecodeError:
        status = {}
    if status.get("kind") != "Status" and "code" not in status:
        text = body[:500].decode("utf-8", "replace").strip()
        status = {"kind": "Status", "status": "Failure", "code": code, "reason": phrase, "message": text or phrase}
    return status


def _log(level: int, message: str) -> None:
    """Logging is imported only when something is logged (it costs milliseconds at start-up)."""
    import logging

    logging.getLogger("danm.kube").log(level, message)


# --------------------------------------------------------------------------------------------
# Resources and URLs


def quote(text: str) -> str:
    """Percent-encode everything but RFC 3986 unreserved characters (path segments, queries)."""
    encoded = text.encode("utf-8")
    return "".join([_QUOTED[byte] for byte in encoded])


def query_string(query: Mapping[str, str]) -> str:
    return "&".join([f"{quote(key)}={quote(value)}" for key, value in query.items()])


class ApiResource:
    """A resource type: where its objects live in the API."""

    def __init__(self, group: str, version: str, plural: str, namespaced: bool, kind: str = "") -> None:
        self.group = group
        self.version = version
        self.plural = plural
        self.namespaced = namespaced
        self.kind = kind

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def group_resource(self) -> str:
        return f"{self.plural}.{self.group}" if self.group else self.plural

    def __repr__(self) -> str:
        return f"ApiResource({self.api_version}, {self.plural})"

    def path(self, namespace: str = "", name: str = "", subresource: str = "") -> str:
        """The URL path of the collection (no name) or of one object.

        A namespaced resource without namespace addresses all namespaces (lists and watches);
        the namespace of a cluster-scoped resource is ignored.
        """
        base = f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"
        if self.namespaced and namespace:
            base = f"{base}/namespaces/{quote(namespace)}"
        elif self.namespaced and name:
            raise ValueError(f"{self.group_resource} {name!r}: a namespaced object needs a namespace")
        path = f"{base}/{self.plural}"
        if name:
            path = f"{path}/{quote(name)}"
            if subresource:
                path = f"{path}/{quote(subresource)}"
        elif subresource:
            raise ValueError("a subresource needs an object name")
        return path


DANMNETS: Final = ApiResource("danm.io", "v1", "danmnets", True, "DanmNet")
TENANTNETWORKS: Final = ApiResource("danm.io", "v1", "tenantnetworks", True, "TenantNetwork")
CLUSTERNETWORKS: Final = ApiResource("danm.io", "v1", "clusternetworks", False, "ClusterNetwork")
TENANTCONFIGS: Final = ApiResource("danm.io", "v1", "tenantconfigs", False, "TenantConfig")
DANMEPS: Final = ApiResource("danm.io", "v1", "danmeps", True, "DanmEp")
NADS: Final = ApiResource("k8s.cni.cncf.io", "v1", "network-attachment-definitions", True, "NetworkAttachmentDefinition")
PODS: Final = ApiResource("", "v1", "pods", True, "Pod")
SERVICES: Final = ApiResource("", "v1", "services", True, "Service")
ENDPOINTS: Final = ApiResource("", "v1", "endpoints", True, "Endpoints")
EVENTS: Final = ApiResource("", "v1", "events", True, "Event")
NODES: Final = ApiResource("", "v1", "nodes", False, "Node")
NAMESPACES: Final = ApiResource("", "v1", "namespaces", False, "Namespace")
ENDPOINTSLICES: Final = ApiResource("discovery.k8s.io", "v1", "endpointslices", True, "EndpointSlice")
LEASES: Final = ApiResource("coordination.k8s.io", "v1", "leases", True, "Lease")

NETWORK_RESOURCES: Final = {"DanmNet": DANMNETS, "TenantNetwork": TENANTNETWORKS, "ClusterNetwork": CLUSTERNETWORKS}


def network_resource(kind: str) -> ApiResource:
    """The resource of a network kind; "" is the legacy spelling of DanmNet."""
    found = NETWORK_RESOURCES.get(kind or "DanmNet")
    if found is None:
        raise ValueError(f"unknown network kind {kind!r}")
    return found


# --------------------------------------------------------------------------------------------
# Configuration


def split_server(url: str) -> tuple[str, str, int, str]:
    """(scheme, host, port, path prefix) of a server URL; no scheme means https."""
    scheme, separator, rest = url.strip().partition("://")
    if not separator:
        scheme, rest = "https", url.strip()
    scheme = scheme.lower()
    if scheme not in ("http", "https"):
        raise ConfigError(f"server {url!r}: unsupported scheme {scheme!r}")
    authority, slash, prefix = rest.partition("/")
    authority = authority.rpartition("@")[2]
    port_text = ""
    if authority.startswith("["):
        end = authority.find("]")
        if end < 0:
            raise ConfigError(f"server {url!r}: unterminated IPv6 address")
        host = authority[1:end]
        port_text = authority[end + 1 :].removeprefix(":")
    elif authority.count(":") == 1:
        host, _, port_text = authority.partition(":")
    else:
        host = authority
    if not host:
        raise ConfigError(f"server {url!r}: no host")
    try:
        port = int(port_text) if port_text else (443 if scheme == "https" else 80)
    except ValueError:
        raise ConfigError(f"server {url!r}: bad port {port_text!r}") from None
    path_prefix = ("/" + prefix).rstrip("/") if slash else ""
    return scheme, host, port, path_prefix


def _decode_base64(value: object, field: str) -> bytes:
    import base64

    try:
        return base64.b64decode(str(value), validate=False)
    except ValueError:
        raise ConfigError(f"kubeconfig: {field} is not base64") from None


def _check_header_value(value: str, what: str) -> str:
    if "\r" in value or "\n" in value:
        raise ConfigError(f"{what} contains a line break")
    return value


def _read_text(path: str) -> str:
    with open(path, encoding="utf-8") as handle:
        return handle.read()


class ClusterConfig:
    """Where the API is and how to authenticate: from a kubeconfig or the in-cluster files."""

    def __init__(
        self,
        server: str,
        *,
        namespace: str = "default",
        ca_file: str = "",
        ca_data: bytes = b"",
        cert_file: str = "",
        cert_data: bytes = b"",
        key_file: str = "",
        key_data: bytes = b"",
        insecure: bool = False,
        tls_server_name: str = "",
        token: str = "",
        token_file: str = "",
        exec_config: JsonObject | None = None,
        auth_provider: JsonObject | None = None,
        kubeconfig: JsonObject | None = None,
        context: str = "",
        base_dir: str = "",
        token_refresh_seconds: float = TOKEN_FILE_REFRESH_SECONDS,
    ) -> None:
        self.server = server
        self.namespace = namespace or "default"
        self.ca_file = ca_file
        self.ca_data = ca_data
        self.cert_file = cert_file
        self.cert_data = cert_data
        self.key_file = key_file
        self.key_data = key_data
        self.insecure = insecure
        self.tls_server_name = tls_server_name
        self.token = _check_header_value(token.strip(), "token")
        self.token_file = token_file
        self.exec_config = exec_config
        self.auth_provider = auth_provider
        # the whole (merged) kubeconfig and context, for the kubernetes package (OIDC only)
        self.kubeconfig = kubeconfig
        self.context = context
        self.base_dir = base_dir
        self.token_refresh_seconds = token_refresh_seconds
        self._lock = threading.Lock()
        self._ssl_context: Any = None
        self._current_token = self.token
        self._token_read_at = -1.0e18
        self._token_expires_at = 0.0  # wall clock, exec/OIDC
        if insecure and (ca_file or ca_data):
            raise ConfigError("a certificate authority and insecure-skip-tls-verify exclude each other")
        if auth_provider is not None and auth_provider.get("name") != "oidc":
            raise ConfigError(f"auth-provider {auth_provider.get('name')!r} is not supported (only oidc; use exec)")
        split_server(server)

    @property
    def endpoint(self) -> tuple[str, str, int, str]:
        return split_server(self.server)

    # -- credentials

    def bearer_token(self) -> str:
        """The token to send now ("" for none); file, exec and OIDC tokens are refreshed as due."""
        with self._lock:
            if self.exec_config is not None or self.auth_provider is not None:
                if not self._current_token or time.time() >= self._token_expires_at - EXPIRY_MARGIN_SECONDS:
                    self._obtain_plugin_token()
            elif self.token_file:
                if time.monotonic() - self._token_read_at >= self.token_refresh_seconds:
                    self._read_token_file()
            return self._current_token

    def refresh_credentials(self, rejected: str) -> bool:
        """After a 401 with token ``rejected``: reload; True if there is a different token to try."""
        with self._lock:
            if self.exec_config is not None or self.auth_provider is not None:
                self._obtain_plugin_token()
            elif self.token_file:
                self._read_token_file()
            else:
                return False
            return self._current_token != rejected and bool(self._current_token)

    def _read_token_file(self) -> None:
        try:
            token = _read_text(self.token_file).strip()
        except OSError as error:
            if not self._current_token:
                raise ConfigError(f"token file {self.token_file}: {error}") from None
            _log(30, f"token file {self.token_file}: {error}; keeping the previous token")
            return
        self._token_read_at = time.monotonic()
        if token:
            self._current_token = _check_header_value(token, f"token file {self.token_file}")

    def _obtain_plugin_token(self) -> None:
        if self.exec_config is not None:
            token, expires = exec_credential(self.exec_config, self, self.base_dir)
        else:
            token, expires = oidc_token(self.kubeconfig or {}, self.context)
        self._current_token = _check_header_value(token, "credential plugin token")
        self._token_expires_at = expires

    # -- TLS

    def ssl_context(self) -> Any:
        """The ssl.SSLContext for HTTPS, built on first use (importing ssl only then)."""
        with self._lock:
            if self._ssl_context is None:
                self._ssl_context = self._build_ssl_context()
            return self._ssl_context

    def _build_ssl_context(self) -> Any:
        import ssl

        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        if self.insecure:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        elif self.ca_file or self.ca_data:
            try:
                if self.ca_file:
                    context.load_verify_locations(cafile=self.ca_file)
                if self.ca_data:
                    context.load_verify_locations(cadata=self.ca_data.decode("ascii", "replace"))
            except (OSError, ValueError) as ca_error:
                raise ConfigError(f"certificate authority: {ca_error}") from None
        else:
            context.load_default_certs()
        if self.cert_file or self.cert_data:
            _load_client_certificate(context, self.cert_file, self.cert_data, self.key_file, self.key_data)
        return context


def _write_private(path: str, data: bytes) -> None:
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(data)


def _load_client_certificate(context: Any, cert_file: str, cert_data: bytes, key_file: str, key_data: bytes) -> None:
    """ssl loads certificates from files only: data goes to private temp files, removed at once."""
    import tempfile

    directory = tempfile.mkdtemp(prefix="danm-kube-")
    written: builtins.list[str] = []
    try:
        if cert_data:
            cert_file = os.path.join(directory, "client.crt")
            _write_private(cert_file, cert_data)
            written.append(cert_file)
        if key_data:
            key_file = os.path.join(directory, "client.key")
            _write_private(key_file, key_data)
            written.append(key_file)
        context.load_cert_chain(cert_file, key_file or None)
    except (OSError, ValueError) as cert_error:
        raise ConfigError(f"client certificate: {cert_error}") from None
    finally:
        for path in written:
            try:
                os.unlink(path)
            except OSError:
                pass
        try:
            os.rmdir(directory)
        except OSError:
            pass


def _parse_timestamp(text: str) -> float:
    import datetime

    try:
        return datetime.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        raise ConfigError(f"credential plugin: bad expirationTimestamp {text!r}") from None


def exec_credential(exec_config: JsonObject, cluster: ClusterConfig, base_dir: str = "") -> tuple[str, float]:
    """Run a client-go credential plugin (kubeconfig ``user.exec``): (token, expiry epoch).

    The plugin gets ``KUBERNETES_EXEC_INFO`` (an ExecCredential with ``spec.interactive: false``
    and, with ``provideClusterInfo``, ``spec.cluster``) and prints an ExecCredential whose
    ``status.token`` is used until ``status.expirationTimestamp`` (forever without one, until a
    401). Certificate credentials from plugins are not supported.
    """
    import subprocess

    command = str(exec_config.get("command") or "")
    if not command:
        raise ConfigError("exec credential plugin: no command")
    if os.sep in command and not os.path.isabs(command) and base_dir:
        command = os.path.join(base_dir, command)
    if exec_config.get("interactiveMode") == "Always":
        raise ConfigError("exec credential plugin: interactiveMode Always needs a terminal")
    api_version = str(exec_config.get("apiVersion") or "client.authentication.k8s.io/v1")
    spec: JsonObject = {"interactive": False}
    if exec_config.get("provideClusterInfo"):
        import base64

        info: JsonObject = {"server": cluster.server, "insecure-skip-tls-verify": cluster.insecure}
        if cluster.tls_server_name:
            info["tls-server-name"] = cluster.tls_server_name
        authority = cluster.ca_data
        if not authority and cluster.ca_file:
            try:
                with open(cluster.ca_file, "rb") as handle:
                    authority = handle.read()
            except OSError:
                authority = b""
        if authority:
            info["certificate-authority-data"] = base64.b64encode(authority).decode()
        spec["cluster"] = info
    environment = dict(os.environ)
    for entry in exec_config.get("env") or []:
        if isinstance(entry, dict) and entry.get("name"):
            environment[str(entry["name"])] = str(entry.get("value", ""))
    request = {"apiVersion": api_version, "kind": "ExecCredential", "spec": spec}
    environment["KUBERNETES_EXEC_INFO"] = msgspec.json.encode(request).decode()
    arguments = [command] + [str(argument) for argument in exec_config.get("args") or []]
    try:
        done = subprocess.run(
            arguments, env=environment, stdin=subprocess.DEVNULL, capture_output=True, timeout=60, check=False
        )
    except (OSError, subprocess.SubprocessError) as run_error:
        raise ConfigError(f"exec credential plugin {command}: {run_error}") from None
    if done.returncode != 0:
        detail = done.stderr.decode("utf-8", "replace").strip()[-500:]
        raise ConfigError(f"exec credential plugin {command} exited {done.returncode}: {detail}")
    try:
        credential = _ANY_MAP.decode(done.stdout)
    except msgspec.DecodeError:
        raise ConfigError(f"exec credential plugin {command}: output is not an ExecCredential") from None
    status = credential.get("status")
    if not isinstance(status, dict) or not status.get("token"):
        raise ConfigError(f"exec credential plugin {command}: no status.token (client certificates unsupported)")
    expiry = status.get("expirationTimestamp")
    expires = _parse_timestamp(str(expiry)) if expiry else float("inf")
    return str(status["token"]), expires


def oidc_token(kubeconfig: JsonObject, context: str) -> tuple[str, float]:
    """An ``auth-provider: oidc`` user's id-token, through the kubernetes package's loader.

    That loader refreshes an expired id-token with the refresh token at the issuer. It is the only
    place danm imports ``kubernetes``. Returns (token, expiry epoch from the JWT's ``exp``).
    """
    import importlib

    client_module: Any = importlib.import_module("kubernetes.client")
    config_module: Any = importlib.import_module("kubernetes.config")
    configuration = client_module.Configuration()
    try:
        config_module.load_kube_config_from_dict(
            kubeconfig, context=context or None, client_configuration=configuration, persist_config=False
        )
    except Exception as load_error:  # the loader raises ConfigException and assorted errors
        raise ConfigError(f"oidc auth-provider: {load_error}") from None
    keys = configuration.api_key or {}
    # the key is "BearerToken" in recent clients, "authorization" in older ones
    header = str(keys.get("BearerToken") or keys.get("authorization") or "")
    token = header.removeprefix("Bearer ").strip()
    if not token:
        raise ConfigError("oidc auth-provider: no id-token")
    return token, _jwt_expiry(token)


def token_expiry(token: str) -> float:
    """The ``exp`` of a JWT bearer token (wall clock), 0.0 when it is no JWT or carries none."""
    import base64

    parts = token.split(".")
    if len(parts) != 3:
        return 0.0
    try:
        payload = _ANY_MAP.decode(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
        return float(payload["exp"])
    except (ValueError, KeyError, TypeError, msgspec.DecodeError):
        return 0.0


def _jwt_expiry(token: str) -> float:
    """When to refresh a plugin's token: its JWT expiry, or soon when it has none."""
    return token_expiry(token) or time.time() + TOKEN_FILE_REFRESH_SECONDS


def _named(document: JsonObject, section: str, name: str, field: str) -> JsonObject:
    for entry in document.get(section) or []:
        if isinstance(entry, dict) and entry.get("name") == name:
            value = entry.get(field)
            return value if isinstance(value, dict) else {}
    raise ConfigError(f"kubeconfig: no {field} named {name!r}")


def _absolute(path: object, base_dir: str) -> str:
    text = os.path.expanduser(str(path or ""))
    if text and base_dir and not os.path.isabs(text):
        return os.path.join(base_dir, text)
    return text


def config_from_kubeconfig(document: JsonObject, context: str = "", base_dir: str = "") -> ClusterConfig:
    """A ClusterConfig from a decoded kubeconfig; relative paths resolve against ``base_dir``."""
    name = context or str(document.get("current-context") or "")
    if not name:
        raise ConfigError("kubeconfig: no current-context")
    context_entry = _named(document, "contexts", name, "context")
    cluster = _named(document, "clusters", str(context_entry.get("cluster") or ""), "cluster")
    user_name = str(context_entry.get("user") or "")
    user = _named(document, "users", user_name, "user") if user_name else {}
    server = str(cluster.get("server") or "")
    if not server:
        raise ConfigError(f"kubeconfig: cluster of context {name!r} has no server")
    exec_config = user.get("exec")
    auth_provider = user.get("auth-provider")
    return ClusterConfig(
        server,
        namespace=str(context_entry.get("namespace") or "default"),
        ca_file=_absolute(cluster.get("certificate-authority"), base_dir),
        ca_data=_decode_base64(cluster["certificate-authority-data"], "certificate-authority-data")
        if cluster.get("certificate-authority-data")
        else b"",
        insecure=bool(cluster.get("insecure-skip-tls-verify")),
        tls_server_name=str(cluster.get("tls-server-name") or ""),
        cert_file=_absolute(user.get("client-certificate"), base_dir),
        cert_data=_decode_base64(user["client-certificate-data"], "client-certificate-data")
        if user.get("client-certificate-data")
        else b"",
        key_file=_absolute(user.get("client-key"), base_dir),
        key_data=_decode_base64(user["client-key-data"], "client-key-data") if user.get("client-key-data") else b"",
        token=str(user.get("token") or ""),
        token_file=_absolute(user.get("tokenFile"), base_dir),
        exec_config=exec_config if isinstance(exec_config, dict) else None,
        auth_provider=auth_provider if isinstance(auth_provider, dict) else None,
        kubeconfig=document,
        context=name,
        base_dir=base_dir,
    )


def parse_kubeconfig(text: str, source: str = "kubeconfig") -> JsonObject:
    """A kubeconfig document: JSON when it looks like JSON (fast), else YAML (PyYAML, lazily)."""
    stripped = text.lstrip()
    if stripped.startswith("{"):
        try:
            document = _ANY_MAP.decode(stripped.encode("utf-8"))
            return document
        except msgspec.DecodeError:
            pass
    import yaml

    loader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    try:
        loaded = yaml.load(text, Loader=loader)
    except yaml.YAMLError as yaml_error:
        raise ConfigError(f"{source}: {yaml_error}") from None
    if loaded is None:
        return {}
    if not isinstance(loaded, dict):
        raise ConfigError(f"{source}: not a kubeconfig mapping")
    return loaded


def _resolve_paths(document: JsonObject, base_dir: str) -> JsonObject:
    """A copy of a kubeconfig with file references made absolute (before merging files)."""
    result = dict(document)
    for section, field, keys in (
        ("clusters", "cluster", ("certificate-authority",)),
        ("users", "user", ("client-certificate", "client-key", "tokenFile")),
    ):
        entries = []
        for entry in document.get(section) or []:
            if isinstance(entry, dict) and isinstance(entry.get(field), dict):
                inner = dict(entry[field])
                for key in keys:
                    if inner.get(key):
                        inner[key] = _absolute(inner[key], base_dir)
                exec_config = inner.get("exec")
                if isinstance(exec_config, dict):
                    command = str(exec_config.get("command") or "")
                    if os.sep in command and not os.path.isabs(command):
                        inner["exec"] = dict(exec_config, command=os.path.join(base_dir, command))
                entry = dict(entry)
                entry[field] = inner
            entries.append(entry)
        result[section] = entries
    return result


def merge_kubeconfigs(documents: builtins.list[JsonObject]) -> JsonObject:
    """client-go's KUBECONFIG merge: the first file to define a name (or current-context) wins."""
    merged: JsonObject = {"apiVersion": "v1", "kind": "Config", "clusters": [], "users": [], "contexts": []}
    current = ""
    for document in documents:
        if not current and document.get("current-context"):
            current = str(document["current-context"])
        for section in ("clusters", "users", "contexts"):
            target: builtins.list[Any] = merged[section]
            names = {entry.get("name") for entry in target}
            for entry in document.get(section) or []:
                if isinstance(entry, dict) and entry.get("name") not in names:
                    target.append(entry)
                    names.add(entry.get("name"))
    merged["current-context"] = current
    return merged


def load_kubeconfig(paths: builtins.list[str], context: str = "") -> ClusterConfig:
    """Load and merge kubeconfig files (missing ones are skipped, as client-go does)."""
    documents: builtins.list[JsonObject] = []
    base_dir = ""
    for path in paths:
        try:
            text = _read_text(path)
        except FileNotFoundError:
            continue
        except OSError as read_error:
            raise ConfigError(f"kubeconfig {path}: {read_error}") from None
        directory = os.path.dirname(os.path.abspath(path))
        if not documents:
            base_dir = directory
        documents.append(_resolve_paths(parse_kubeconfig(text, path), directory))
    if not documents:
        raise ConfigError(f"kubeconfig not found: {':'.join(paths)}")
    document = documents[0] if len(documents) == 1 else merge_kubeconfigs(documents)
    return config_from_kubeconfig(document, context, base_dir)


def load_incluster_config(
    serviceaccount_dir: str = SERVICEACCOUNT_DIR, environ: Mapping[str, str] | None = None
) -> ClusterConfig:
    """The pod's service account: KUBERNETES_SERVICE_HOST/PORT, token, ca.crt and namespace files.

    The token is re-read from its file (projected tokens rotate), at most once a minute and at
    once after a 401.
    """
    env = os.environ if environ is None else environ
    host = env.get("KUBERNETES_SERVICE_HOST", "")
    port = env.get("KUBERNETES_SERVICE_PORT", "")
    if not host or not port:
        raise ConfigError("not in a cluster: KUBERNETES_SERVICE_HOST/KUBERNETES_SERVICE_PORT are not set")
    token_file = os.path.join(serviceaccount_dir, "token")
    ca_file = os.path.join(serviceaccount_dir, "ca.crt")
    namespace = "default"
    try:
        namespace = _read_text(os.path.join(serviceaccount_dir, "namespace")).strip() or "default"
    except OSError:
        pass
    shown = f"[{host}]" if ":" in host else host
    config = ClusterConfig(
        f"https://{shown}:{port}",
        namespace=namespace,
        ca_file=ca_file if os.path.exists(ca_file) else "",
        token_file=token_file,
    )
    config.bearer_token()  # a missing or unreadable token file is a configuration error now
    return config


def load_config(
    kubeconfig: str | None = None,
    *,
    context: str = "",
    environ: Mapping[str, str] | None = None,
    serviceaccount_dir: str = SERVICEACCOUNT_DIR,
) -> ClusterConfig:
    """Find the configuration as client-go does.

    The explicit kubeconfig path, else ``$KUBECONFIG`` (a colon-separated list, merged; missing
    files are skipped), else (without ``$KUBECONFIG``) ``~/.kube/config``, else the in-cluster
    service account (``serviceaccount_dir`` is injectable for tests).
    """
    env = os.environ if environ is None else environ
    if kubeconfig:
        if not os.path.exists(kubeconfig):
            raise ConfigError(f"kubeconfig {kubeconfig} not found")
        return load_kubeconfig([kubeconfig], context)
    listed = [path for path in env.get("KUBECONFIG", "").split(os.pathsep) if path]
    if listed:
        # $KUBECONFIG replaces ~/.kube/config; if none of its files exists, in-cluster is next
        if any(os.path.exists(path) for path in listed):
            return load_kubeconfig(listed, context)
    else:
        home = env.get("HOME") or os.path.expanduser("~")
        default = os.path.join(home, ".kube", "config")
        if os.path.exists(default):
            return load_kubeconfig([default], context)
    if env.get("KUBERNETES_SERVICE_HOST"):
        return load_incluster_config(serviceaccount_dir, env)
    raise ConfigError("no kubeconfig (explicit, $KUBECONFIG or ~/.kube/config) and not in a cluster")


# --------------------------------------------------------------------------------------------
# HTTP/1.1 over a socket


class _ProtocolError(Exception):
    """A malformed or truncated HTTP answer."""


class _ServerClosed(_ProtocolError):
    """The connection closed before a single byte of the answer arrived."""


class _Stopped(Exception):
    """A watch's stop event was set."""


class _TransportError(Exception):
    """One attempt failed below HTTP; the retry loop decides with these facts."""

    def __init__(self, cause: BaseException, sent: bool, stale: bool, permanent: bool) -> None:
        super().__init__(str(cause) or type(cause).__name__)
        self.cause = cause
        self.sent = sent  # the request may have reached the server
        self.stale = stale  # a reused keep-alive connection died without answering
        self.permanent = permanent  # retrying cannot help (TLS verification)
        self.timed_out = isinstance(cause, TimeoutError)


def _pending_tls_bytes(sock: socket.socket) -> bool:
    pending = getattr(sock, "pending", None)
    return pending is not None and int(pending()) > 0


def _is_certificate_error(error: BaseException) -> bool:
    import sys

    ssl_module: Any = sys.modules.get("ssl")
    return ssl_module is not None and isinstance(error, ssl_module.SSLCertVerificationError)


class _Connection:
    """One HTTP/1.1 connection and its receive buffer."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buffer = bytearray()
        self.idle_since = time.monotonic()

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass

    def shutdown(self) -> None:
        """Wake a thread blocked reading this connection (from another thread)."""
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def dropped(self) -> bool:
        """An idle connection with something to read was closed by the server (or is confused)."""
        if self.buffer or _pending_tls_bytes(self.sock):
            return True
        try:
            readable = select.select([self.sock], [], [], 0)[0]
        except (OSError, ValueError):
            return True
        return bool(readable)

    def send(self, data: bytes, deadline: float) -> None:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError("timed out")
        self.sock.settimeout(remaining)
        self.sock.sendall(data)

    def receive(self, deadline: float, stop: threading.Event | None) -> bool:
        """Append what arrives next to the buffer; False at end of stream."""
        sock = self.sock
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError("timed out")
            if stop is not None:
                if stop.is_set():
                    raise _Stopped()
                if not _pending_tls_bytes(sock):
                    if not select.select([sock], [], [], min(remaining, STOP_POLL_SECONDS))[0]:
                        continue
            sock.settimeout(remaining)
            if _QUICKACK:
                # Acknowledge at once: a server writing headers and body separately (Python's
                # http.server, the embedded API server) would otherwise wait for our delayed ACK
                # (Nagle), 40 ms per request. The option does not stick, hence before each read.
                try:
                    sock.setsockopt(socket.IPPROTO_TCP, _QUICKACK, 1)
                except OSError:
                    pass
            data = sock.recv(RECEIVE_SIZE)
            if not data:
                return False
            self.buffer += data
            return True

    def read_line(self, deadline: float, stop: threading.Event | None = None) -> bytes:
        start = 0
        while True:
            index = self.buffer.find(b"\n", start)
            if index >= 0:
                line = bytes(self.buffer[: index + 1])
                del self.buffer[: index + 1]
                return line
            if len(self.buffer) > MAX_HEADER_LINE:
                raise _ProtocolError("line too long")
            start = len(self.buffer)
            if not self.receive(deadline, stop):
                raise _ProtocolError("connection closed in the middle of a line")

    def read_exact(self, size: int, deadline: float, stop: threading.Event | None = None) -> bytes:
        while len(self.buffer) < size:
            if not self.receive(deadline, stop):
                raise _ProtocolError(f"connection closed after {len(self.buffer)} of {size} bytes")
        data = bytes(self.buffer[:size])
        del self.buffer[:size]
        return data

    def read_to_end(self, deadline: float) -> bytes:
        while self.receive(deadline, None):
            pass
        data = bytes(self.buffer)
        self.buffer.clear()
        return data


class _Response:
    def __init__(self, status: int, phrase: str, headers: dict[str, str], keep_alive: bool) -> None:
        self.status = status
        self.phrase = phrase
        self.headers = headers
        self.keep_alive = keep_alive
        self.body = b""
        self.connection: _Connection | None = None


def _read_head(connection: _Connection, deadline: float) -> _Response:
    """Status line and headers (1xx answers skipped)."""
    while True:
        if not connection.buffer and not connection.receive(deadline, None):
            raise _ServerClosed("the server closed the connection without answering")
        line = connection.read_line(deadline)
        parts = line.decode("latin-1").rstrip("\r\n").split(" ", 2)
        if len(parts) < 2 or not parts[0].startswith("HTTP/") or not parts[1].isdigit():
            raise _ProtocolError(f"bad status line {line[:80]!r}")
        status = int(parts[1])
        phrase = parts[2] if len(parts) > 2 else ""
        headers: dict[str, str] = {}
        for _ in range(MAX_HEADERS):
            header = connection.read_line(deadline)
            if header in (b"\r\n", b"\n"):
                break
            name, _, value = header.decode("latin-1").partition(":")
            key = name.strip().lower()
            value = value.strip()
            headers[key] = f"{headers[key]}, {value}" if key in headers else value
        else:
            raise _ProtocolError("too many headers")
        if 100 <= status < 200:
            continue
        keep_alive = parts[0] == "HTTP/1.1" and "close" not in headers.get("connection", "").lower()
        return _Response(status, phrase, headers, keep_alive)


def _is_chunked(headers: dict[str, str]) -> bool:
    return "chunked" in headers.get("transfer-encoding", "").lower()


def _chunk_size(line: bytes) -> int:
    text = line.split(b";", 1)[0].strip()
    try:
        return int(text, 16)
    except ValueError:
        raise _ProtocolError(f"bad chunk size {line[:40]!r}") from None


def _read_body(connection: _Connection, response: _Response, method: str, deadline: float) -> None:
    if method == "HEAD" or response.status in (204, 304):
        return
    if _is_chunked(response.headers):
        pieces: builtins.list[bytes] = []
        while True:
            size = _chunk_size(connection.read_line(deadline))
            if size == 0:
                while connection.read_line(deadline) not in (b"\r\n", b"\n"):
                    pass  # trailers
                break
            pieces.append(connection.read_exact(size, deadline))
            connection.read_line(deadline)
        response.body = b"".join(pieces)
        return
    length = response.headers.get("content-length")
    if length is not None:
        try:
            size = int(length)
        except ValueError:
            raise _ProtocolError(f"bad Content-Length {length!r}") from None
        response.body = connection.read_exact(size, deadline)
        return
    response.keep_alive = False
    response.body = connection.read_to_end(deadline)


class _BodyStream:
    """A streamed (watch) body: chunked, or delimited by length or end of connection."""

    def __init__(self, connection: _Connection, headers: dict[str, str]) -> None:
        self.connection = connection
        self.chunked = _is_chunked(headers)
        length = headers.get("content-length")
        self.remaining = int(length) if length is not None and length.isdigit() and not self.chunked else -1
        self.finished = False

    def read_some(self, deadline: float, stop: threading.Event | None) -> bytes:
        """The next piece of the body; b"" at its (clean) end."""
        connection = self.connection
        if self.finished:
            return b""
        if self.chunked:
            size = _chunk_size(connection.read_line(deadline, stop))
            if size == 0:
                while connection.read_line(deadline, stop) not in (b"\r\n", b"\n"):
                    pass
                self.finished = True
                return b""
            data = connection.read_exact(size, deadline, stop)
            connection.read_line(deadline, stop)
            return data
        if self.remaining == 0:
            self.finished = True
            return b""
        if not connection.buffer and not connection.receive(deadline, stop):
            if self.remaining > 0:
                raise _ProtocolError("connection closed before the end of the body")
            self.finished = True
            return b""
        data = bytes(connection.buffer)
        if self.remaining > 0:
            data = data[: self.remaining]
            self.remaining -= len(data)
        del connection.buffer[: len(data)]
        return data


def _retry_after(headers: dict[str, str], status: JsonObject) -> float | None:
    value = headers.get("retry-after", "").strip()
    if value:
        try:
            return max(0.0, float(value))
        except ValueError:
            pass  # an HTTP date: the API server sends seconds; fall back to backoff
    details = status.get("details")
    if isinstance(details, dict):
        seconds = details.get("retryAfterSeconds")
        if isinstance(seconds, (int, float)) and seconds > 0:
            return float(seconds)
    return None


def _guarded_patch(body: object) -> bool:
    """Whether a patch carries metadata.resourceVersion, which makes repeating it harmless."""
    if isinstance(body, builtins.list):
        for operation in body:
            if (
                isinstance(operation, dict)
                and operation.get("path") == "/metadata/resourceVersion"
                and operation.get("op") in ("replace", "test", "add")
            ):
                return True
        return False
    if isinstance(body, dict):
        metadata = body.get("metadata")
        return isinstance(metadata, dict) and bool(metadata.get("resourceVersion"))
    return False


# --------------------------------------------------------------------------------------------
# Watch events


class WatchEvent(Generic[T]):
    """One watch event: ADDED, MODIFIED, DELETED or BOOKMARK (``object`` None), and from
    ``list_and_watch`` also SYNC (a listed object) and LISTED (end of a listing, ``object`` None).
    """

    def __init__(self, type: str, object: T | None, resource_version: str, namespace: str = "", name: str = "") -> None:
        self.type = type
        self.object = object
        self.resource_version = resource_version
        self.namespace = namespace
        self.name = name

    def __repr__(self) -> str:
        where = f"{self.namespace}/{self.name}" if self.namespace else self.name
        return f"WatchEvent({self.type} {where} rv={self.resource_version})"


# --------------------------------------------------------------------------------------------
# The client


class ApiClient:
    """A thread-safe Kubernetes API client with kept-alive connections.

    ``timeout`` bounds each attempt (connect, send and the whole answer); ``retries`` bounds the
    repeated attempts (see the module documentation for which failures are retried); every call
    takes an optional ``deadline`` (a ``time.monotonic()`` value) past which nothing is tried.
    """

    def __init__(
        self,
        config: ClusterConfig,
        timeout: float = DEFAULT_TIMEOUT,
        *,
        retries: int = DEFAULT_RETRIES,
        backoff: float = DEFAULT_BACKOFF,
        max_backoff: float = MAX_BACKOFF,
        max_idle_connections: int = MAX_IDLE_CONNECTIONS,
    ) -> None:
        self.config = config
        self.timeout = timeout
        self.retries = retries
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.max_idle_connections = max_idle_connections
        scheme, host, port, prefix = config.endpoint
        self.scheme = scheme
        self.host = host
        self.port = port
        self.prefix = prefix
        shown = f"[{host}]" if ":" in host else host
        default_port = 443 if scheme == "https" else 80
        self.host_header = shown if port == default_port else f"{shown}:{port}"
        self.connections_opened = 0
        self._lock = threading.Lock()
        self._idle: builtins.list[_Connection] = []
        self._streams: set[_Connection] = set()
        self._closed = False

    def __enter__(self) -> ApiClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def is_closed(self) -> bool:
        return self._closed

    def close(self) -> None:
        """Close idle connections and wake running watches (they end)."""
        with self._lock:
            self._closed = True
            idle = self._idle
            self._idle = []
            streams = builtins.list(self._streams)
        for connection in idle:
            connection.close()
        for connection in streams:
            connection.shutdown()

    # -- connections

    def _connect(self, deadline: float) -> _Connection:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError("timed out")
        sock = socket.create_connection((self.host, self.port), timeout=remaining)
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if self.scheme == "https":
                context = self.config.ssl_context()
                sock.settimeout(max(deadline - time.monotonic(), 0.001))
                sock = context.wrap_socket(sock, server_hostname=self.config.tls_server_name or self.host)
        except BaseException:
            sock.close()
            raise
        with self._lock:
            self.connections_opened += 1
        return _Connection(sock)

    def _acquire(self) -> _Connection | None:
        """An idle connection that still looks alive, or None."""
        now = time.monotonic()
        while True:
            with self._lock:
                if not self._idle:
                    return None
                connection = self._idle.pop()
            if now - connection.idle_since > MAX_IDLE_SECONDS or connection.dropped():
                connection.close()
                continue
            return connection

    def _release(self, connection: _Connection) -> None:
        connection.idle_since = time.monotonic()
        with self._lock:
            if not self._closed and len(self._idle) < self.max_idle_connections:
                self._idle.append(connection)
                return
        connection.close()

    # -- one attempt

    def _request_bytes(self, method: str, target: str, body: bytes | None, content_type: str, token: str) -> bytes:
        lines = [
            f"{method} {target} HTTP/1.1",
            f"Host: {self.host_header}",
            f"User-Agent: {USER_AGENT}",
            "Accept: application/json",
        ]
        if token:
            lines.append(f"Authorization: Bearer {token}")
        if body is not None:
            lines.append(f"Content-Type: {content_type}")
            lines.append(f"Content-Length: {len(body)}")
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        return head + body if body is not None else head

    def _attempt(self, method: str, data: bytes, deadline: float, stream: bool) -> _Response:
        connection = self._acquire()
        reused = connection is not None
        if connection is None:
            try:
                connection = self._connect(deadline)
            except OSError as connect_error:
                raise _TransportError(connect_error, False, False, _is_certificate_error(connect_error)) from None
        try:
            connection.send(data, deadline)
            response = _read_head(connection, deadline)
            if not stream or response.status != 200:
                _read_body(connection, response, method, deadline)
        except (OSError, _ProtocolError) as exchange_error:
            connection.close()
            stale = reused and isinstance(exchange_error, (_ServerClosed, ConnectionResetError, BrokenPipeError))
            raise _TransportError(exchange_error, True, stale, False) from None
        if stream and response.status == 200:
            response.connection = connection
        elif response.keep_alive:
            self._release(connection)
        else:
            connection.close()
        return response

    # -- the retry loop

    def _backoff_delay(self, attempt: int) -> float:
        import random

        delay = min(self.max_backoff, self.backoff * (2.0**attempt))
        return delay * (0.5 + random.random() / 2.0)

    def _target(self, path: str, query: Mapping[str, str] | None) -> str:
        target = self.prefix + path
        if query:
            target = f"{target}?{query_string(query)}"
        return target

    def _perform(
        self,
        method: str,
        path: str,
        query: Mapping[str, str] | None,
        body: bytes | None,
        content_type: str,
        replay_safe: bool | None,
        deadline: float | None,
        stream: bool = False,
    ) -> _Response:
        if self.is_closed():
            raise ConnectionFailed("the client is closed")
        safe = method in _IDEMPOTENT if replay_safe is None else replay_safe
        target = self._target(path, query)
        attempt = 0
        stale_retried = False
        reauthenticated = False
        where = f"{method} {self.scheme}://{self.host_header}{target}"
        while True:
            now = time.monotonic()
            if deadline is not None and now >= deadline:
                raise DeadlineExceeded(f"{where}: deadline passed after {attempt} retries")
            attempt_deadline = now + self.timeout
            if deadline is not None and deadline < attempt_deadline:
                attempt_deadline = deadline
            token = self.config.bearer_token()
            data = self._request_bytes(method, target, body, content_type, token)
            failure: KubeError
            cause: BaseException | None = None
            delay = -1.0
            try:
                response = self._attempt(method, data, attempt_deadline, stream)
            except _TransportError as transport:
                if transport.permanent:
                    raise ConnectionFailed(f"{where}: {transport}", attempt + 1) from transport.cause
                if transport.timed_out and deadline is not None and time.monotonic() >= deadline - 0.01:
                    raise DeadlineExceeded(f"{where}: deadline passed waiting for the server") from transport.cause
                if transport.stale and safe and not stale_retried:
                    stale_retried = True
                    continue
                failure = ConnectionFailed(f"{where}: {transport}", attempt + 1)
                cause = transport.cause
                if transport.sent and not safe:
                    raise ConnectionFailed(
                        f"{where}: {transport} (the request may have been applied: not repeated)", attempt + 1
                    ) from transport.cause
            else:
                if 200 <= response.status < 300:
                    return response
                status = _decode_status(response.body, response.status, response.phrase)
                retry_after = _retry_after(response.headers, status)
                error = error_for(response.status, status, retry_after)
                if response.status == 401 and not reauthenticated and self.config.refresh_credentials(token):
                    reauthenticated = True
                    continue
                server_says_retry = response.status == 429 or (response.status >= 500 and retry_after is not None)
                if not (server_says_retry or (response.status >= 500 and safe)):
                    raise error
                failure = error
                if retry_after is not None:
                    delay = min(retry_after, MAX_RETRY_AFTER)
            if attempt >= self.retries:
                if isinstance(failure, ConnectionFailed):
                    failure.attempts = attempt + 1
                raise failure from cause
            if delay < 0:
                delay = self._backoff_delay(attempt)
            if deadline is not None and time.monotonic() + delay >= deadline:
                raise DeadlineExceeded(f"{where}: the next attempt would start after the deadline ({failure})") from failure
            time.sleep(delay)
            attempt += 1

    # -- raw requests

    def request(
        self,
        method: str,
        path: str,
        *,
        query: Mapping[str, str] | None = None,
        body: bytes | None = None,
        content_type: str = JSON,
        replay_safe: bool | None = None,
        deadline: float | None = None,
    ) -> bytes:
        """One API call with retries; returns the body of a 2xx answer, raises ApiError otherwise.

        ``replay_safe`` overrides whether the request may be repeated when it may have been
        applied (default: GET, HEAD, PUT and DELETE may).
        """
        return self._perform(method, path, query, body, content_type, replay_safe, deadline).body

    # -- typed verbs

    def get(
        self,
        resource: ApiResource,
        namespace: str,
        name: str,
        type: builtins.type[T],
        *,
        subresource: str = "",
        deadline: float | None = None,
    ) -> T:
        """One object, decoded into ``type`` (a Struct of danm.types, or ``dict``)."""
        body = self.request("GET", resource.path(namespace, name, subresource), deadline=deadline)
        return decoder(type).decode(body)

    def list(
        self,
        resource: ApiResource,
        namespace: str,
        type: builtins.type[T],
        *,
        label_selector: str = "",
        field_selector: str = "",
        limit: int = DEFAULT_PAGE_SIZE,
        resource_version: str = "",
        deadline: float | None = None,
    ) -> tuple[builtins.list[T], str]:
        """All matching objects and the list's resourceVersion (to watch from).

        Pages of ``limit`` objects are followed through ``continue`` tokens; when a token expires
        (410) the list starts over unpaged, as client-go's pager does. ``namespace`` "" lists a
        namespaced resource across all namespaces.
        """
        items: builtins.list[T] = []
        item_decoder = _list_decoder(type)
        for page in self._pages(resource, namespace, label_selector, field_selector, limit, resource_version, deadline):
            if page[0] is None:
                items = []
                continue
            items.extend(item_decoder.decode(page[0]))
            if page[1]:
                return items, page[1]
        return items, ""

    def _pages(
        self,
        resource: ApiResource,
        namespace: str,
        label_selector: str,
        field_selector: str,
        limit: int,
        resource_version: str,
        deadline: float | None,
    ) -> Iterator[tuple[msgspec.Raw | None, str]]:
        """(items, "") per page and (items, list resourceVersion) for the last one; (None, "")
        means "forget the pages so far, the list starts over"."""
        path = resource.path(namespace)
        token = ""
        page_size = limit
        while True:
            query: dict[str, str] = {}
            if label_selector:
                query["labelSelector"] = label_selector
            if field_selector:
                query["fieldSelector"] = field_selector
            if page_size > 0:
                query["limit"] = str(page_size)
            if token:
                query["continue"] = token
            elif resource_version:
                query["resourceVersion"] = resource_version
            try:
                body = self.request("GET", path, query=query, deadline=deadline)
            except Gone:
                if not token:
                    raise
                _log(20, f"list {resource.group_resource}: continue token expired, listing again unpaged")
                token = ""
                page_size = 0
                yield None, ""
                continue
            fields = _RAW_MAP.decode(body)
            metadata_raw = fields.get("metadata")
            metadata = _ANY_MAP.decode(metadata_raw) if metadata_raw is not None else {}
            token = str(metadata.get("continue") or "")
            version = str(metadata.get("resourceVersion") or "")
            items = fields.get("items")
            if token:
                yield items if items is not None else msgspec.Raw(b"[]"), ""
                continue
            yield items if items is not None else msgspec.Raw(b"[]"), version or "0"
            return

    def create(
        self,
        resource: ApiResource,
        obj: T,
        *,
        namespace: str = "",
        dry_run: bool = False,
        deadline: float | None = None,
    ) -> T:
        """POST a new object (its namespace from ``namespace`` or its metadata); returns it as
        stored. Not repeated once it may have been applied (a repeat could create twice with
        generateName, or fail AlreadyExists)."""
        target_namespace = namespace or _metadata_field(obj, "namespace", "namespace")
        if resource.namespaced and not target_namespace:
            raise ValueError(f"create {resource.group_resource}: no namespace")
        query = {"dryRun": "All"} if dry_run else None
        body = self.request(
            "POST", resource.path(target_namespace), query=query, body=msgspec.json.encode(obj), deadline=deadline
        )
        result: T = decoder(builtins.type(obj)).decode(body)
        return result

    def update(
        self,
        resource: ApiResource,
        obj: T,
        *,
        subresource: str = "",
        deadline: float | None = None,
    ) -> T:
        """PUT a whole object, guarded by its metadata.resourceVersion (409 Conflict when stale).

        Only for objects danm created and fully models (DanmEps): a PUT drops every field the
        type does not model. Everything else changes through ``apply_change``.
        """
        name = _metadata_field(obj, "name", "name")
        version = _metadata_field(obj, "resourceVersion", "resource_version")
        if not name or not version:
            raise ValueError(f"update {resource.group_resource}: the object needs metadata.name and resourceVersion")
        path = resource.path(_metadata_field(obj, "namespace", "namespace"), name, subresource)
        body = self.request("PUT", path, body=msgspec.json.encode(obj), deadline=deadline)
        result: T = decoder(builtins.type(obj)).decode(body)
        return result

    def patch(
        self,
        resource: ApiResource,
        namespace: str,
        name: str,
        patch: builtins.list[JsonObject] | JsonObject,
        type: builtins.type[T],
        *,
        content_type: str = "",
        subresource: str = "",
        deadline: float | None = None,
    ) -> T:
        """PATCH an object: a list is a JSON Patch, a dict a JSON merge patch, unless
        ``content_type`` says otherwise (strategic merge patch: built-in types only).

        A patch that pins metadata.resourceVersion is repeated after ambiguous failures (a repeat
        of an applied one gets 409); others are not.
        """
        kind = content_type or (JSON_PATCH if isinstance(patch, builtins.list) else MERGE_PATCH)
        body = self.request(
            "PATCH",
            resource.path(namespace, name, subresource),
            body=msgspec.json.encode(patch),
            content_type=kind,
            replay_safe=_guarded_patch(patch),
            deadline=deadline,
        )
        return decoder(type).decode(body)

    def apply_change(self, resource: ApiResource, old: S, new: S, *, deadline: float | None = None) -> S:
        """Write the change from ``old`` (as read) to ``new`` as danm's guarded JSON Patch.

        Fields the Struct does not model are never touched; a stale ``old`` gets 409 Conflict.
        Nothing is sent when nothing modelled changed (``new`` is returned).
        """
        from danm.patch import struct_patch  # imported on first use: copy is not needed to start

        operations = struct_patch(old, new)
        if not operations:
            return new
        if not _metadata_field(old, "resourceVersion", "resource_version"):
            raise ValueError(f"apply_change {resource.group_resource}: the old object has no resourceVersion")
        namespace = _metadata_field(old, "namespace", "namespace")
        name = _metadata_field(old, "name", "name")
        result: S = self.patch(
            resource, namespace, name, operations, builtins.type(new), content_type=JSON_PATCH, deadline=deadline
        )
        return result

    def delete(
        self,
        resource: ApiResource,
        namespace: str,
        name: str,
        *,
        preconditions: Mapping[str, str] | None = None,
        propagation_policy: str = "",
        grace_period_seconds: int | None = None,
        deadline: float | None = None,
    ) -> JsonObject:
        """DELETE an object; ``preconditions`` ({"uid": ..., "resourceVersion": ...}) make it
        conditional (409 Conflict on mismatch). Returns the answer: the object (still there with
        a deletionTimestamp when finalizers hold it) or a Status. A repeat after an ambiguous
        failure may get 404 for an object this call deleted."""
        options: JsonObject = {"kind": "DeleteOptions", "apiVersion": "v1"}
        if preconditions:
            options["preconditions"] = dict(preconditions)
        if propagation_policy:
            options["propagationPolicy"] = propagation_policy
        if grace_period_seconds is not None:
            options["gracePeriodSeconds"] = grace_period_seconds
        body = self.request(
            "DELETE", resource.path(namespace, name), body=msgspec.json.encode(options), deadline=deadline
        )
        return _ANY_MAP.decode(body) if body else {}

    # -- watches

    def watch(
        self,
        resource: ApiResource,
        namespace: str,
        type: builtins.type[T],
        resource_version: str = "",
        *,
        label_selector: str = "",
        field_selector: str = "",
        timeout_seconds: int = DEFAULT_WATCH_SECONDS,
        reconnect: bool = True,
        stop: threading.Event | None = None,
        iterations: int | None = None,
    ) -> Iterator[WatchEvent[T]]:
        """Changes after ``resource_version`` ("" or "0": first an ADDED per existing object).

        Bookmarks are requested and yielded (they only carry a resourceVersion). When a stream
        ends (the server's ``timeout_seconds``) or breaks, the watch resumes from the last
        resourceVersion seen (with none seen yet, the server's initial ADDED events come again),
        unless ``reconnect`` is False; broken streams are retried with
        backoff, ``retries`` times in a row at most (then ConnectionFailed). An ERROR event with
        410 raises Gone (list again); other ERROR events raise their ApiError. Unknown event
        types, and objects that do not decode into ``type``, are logged and skipped.

        The watch ends when ``stop`` is set (checked every 0.2 s while the stream is quiet), after
        ``iterations`` watch requests (tests), or when the client is closed.
        """
        version = resource_version
        path = resource.path(namespace)
        item_decoder = decoder(type)
        failures = 0
        requests = 0
        while True:
            if (stop is not None and stop.is_set()) or self.is_closed():
                return
            if iterations is not None and requests >= iterations:
                return
            requests += 1
            query = {"watch": "true", "allowWatchBookmarks": "true", "timeoutSeconds": str(timeout_seconds)}
            if version:
                query["resourceVersion"] = version
            if label_selector:
                query["labelSelector"] = label_selector
            if field_selector:
                query["fieldSelector"] = field_selector
            response = self._perform("GET", path, query, None, JSON, True, None, True)
            connection = response.connection
            assert connection is not None
            with self._lock:
                self._streams.add(connection)
            reader = _BodyStream(connection, response.headers)
            pending = bytearray()
            clean = False
            idle_limit = float(timeout_seconds) + self.timeout
            try:
                while True:
                    try:
                        data = reader.read_some(time.monotonic() + idle_limit, stop)
                    except _Stopped:
                        return
                    except (OSError, _ProtocolError) as stream_error:
                        if not self.is_closed():
                            _log(20, f"watch {resource.group_resource}: stream broke ({stream_error}); resuming")
                        break
                    if not data:
                        clean = True
                        break
                    pending += data
                    start = 0
                    broken = False
                    while True:
                        index = pending.find(b"\n", start)
                        if index < 0:
                            break
                        line = bytes(pending[start:index])
                        start = index + 1
                        event = self._watch_event(line, item_decoder, resource)
                        if event is None:
                            continue
                        if event.type == _BROKEN:
                            broken = True
                            break
                        if event.resource_version:
                            version = event.resource_version
                        failures = 0
                        if event.type:
                            yield event
                    if broken:
                        break
                    del pending[:start]
            finally:
                with self._lock:
                    self._streams.discard(connection)
                connection.close()
            if self.is_closed():
                return
            if clean:
                if not reconnect:
                    return
                continue
            failures += 1
            if failures > self.retries:
                raise ConnectionFailed(f"watch {resource.group_resource}: the stream broke {failures} times in a row", failures)
            delay = self._backoff_delay(failures - 1)
            if stop is not None:
                if stop.wait(delay):
                    return
            else:
                time.sleep(delay)

    def _watch_event(
        self, line: bytes, item_decoder: msgspec.json.Decoder[T], resource: ApiResource
    ) -> WatchEvent[T] | None:
        """A decoded event; None for blank lines. An event with type "" only moves the version;
        type _BROKEN means the stream is garbled (resume from the last version)."""
        if not line.strip():
            return None
        try:
            fields = _RAW_MAP.decode(line)
        except msgspec.DecodeError:
            _log(30, f"watch {resource.group_resource}: bad event {line[:80]!r}; resuming")
            return WatchEvent(_BROKEN, None, "")
        kind = _raw_string(fields, "type")
        raw_object = fields.get("object")
        if raw_object is None:
            _log(30, f"watch {resource.group_resource}: {kind} event without object skipped")
            return None
        if kind == ERROR:
            try:
                status = _ANY_MAP.decode(raw_object)
            except msgspec.DecodeError:
                status = {}
            code = status.get("code")
            raise error_for(int(code) if isinstance(code, int) else 500, status)
        namespace, name, version = raw_identity(raw_object)
        if kind == BOOKMARK:
            return WatchEvent(BOOKMARK, None, version)
        if kind not in (ADDED, MODIFIED, DELETED):
            _log(30, f"watch {resource.group_resource}: unknown event type {kind!r} skipped")
            return None
        try:
            obj = item_decoder.decode(raw_object)
        except msgspec.DecodeError as decode_error:
            _log(40, f"watch {resource.group_resource}: {kind} {namespace}/{name} skipped: {decode_error}")
            return WatchEvent("", None, version, namespace, name)
        return WatchEvent(kind, obj, version, namespace, name)

    def list_and_watch(
        self,
        resource: ApiResource,
        namespace: str,
        type: builtins.type[T],
        *,
        label_selector: str = "",
        field_selector: str = "",
        page_size: int = DEFAULT_PAGE_SIZE,
        timeout_seconds: int = DEFAULT_WATCH_SECONDS,
        stop: threading.Event | None = None,
        iterations: int | None = None,
    ) -> Iterator[WatchEvent[T]]:
        """An informer's event stream, modelled on kopf's watching loop.

        List (a SYNC event per object), then DELETED for every object known from before that the
        list no longer has (with its last known state), then LISTED (``resource_version`` = the
        list's); then watch from the list's resourceVersion (ADDED, MODIFIED, DELETED; bookmarks
        only advance the version). When the watch gets 410 Gone, list again and continue: the
        consumer reconciles from the SYNC set. Other errors propagate. Ends when ``stop`` is set,
        after ``iterations`` listings (tests), or when the client is closed.
        """
        known: dict[tuple[str, str], T] = {}
        listings = 0
        item_decoder = decoder(type)
        while True:
            if (stop is not None and stop.is_set()) or self.is_closed():
                return
            if iterations is not None and listings >= iterations:
                return
            listings += 1
            current: dict[tuple[str, str], T] = {}
            version = ""
            pages = self._pages(resource, namespace, label_selector, field_selector, page_size, "", None)
            synced: builtins.list[WatchEvent[T]] = []
            for items_raw, page_version in pages:
                if items_raw is None:
                    current = {}
                    synced = []
                    continue
                for item in _RAW_LIST.decode(items_raw):
                    item_namespace, item_name, item_version = raw_identity(item)
                    try:
                        obj = item_decoder.decode(item)
                    except msgspec.DecodeError as decode_error:
                        _log(40, f"list {resource.group_resource}: {item_namespace}/{item_name} skipped: {decode_error}")
                        continue
                    current[(item_namespace, item_name)] = obj
                    synced.append(WatchEvent(SYNC, obj, item_version, item_namespace, item_name))
                version = page_version
            for event in synced:
                yield event
            for key, gone in known.items():
                if key not in current:
                    yield WatchEvent(DELETED, gone, version, key[0], key[1])
            known = current
            yield WatchEvent(LISTED, None, version)
            try:
                for event in self.watch(
                    resource,
                    namespace,
                    type,
                    version,
                    label_selector=label_selector,
                    field_selector=field_selector,
                    timeout_seconds=timeout_seconds,
                    stop=stop,
                ):
                    if event.type == BOOKMARK:
                        continue
                    key = (event.namespace, event.name)
                    if event.type == DELETED:
                        known.pop(key, None)
                    elif event.object is not None:
                        known[key] = event.object
                    yield event
            except Gone as expired:
                _log(20, f"watch {resource.group_resource}: {expired.message or 'expired'}; listing again")
                continue
            return
