"""The CNI protocol face of danm: spec versions, verbs, the error-code table and the reply bytes.

``run(env, stdin)`` is the whole plugin as a pure function of its inputs, in the style of the
reference plugins' skel dispatcher; ``main()`` is the thin shell that reads stdin and writes
stdout. Only the answer or the error document ever goes to stdout.

The VERSION answer is precomputed bytes: runtimes ask it often, and answering it must not import
msgspec. A test checks these bytes against the typed ``VersionReply``.
"""

from __future__ import annotations  # annotations name types that are imported for mypy only

import os
import sys

from danm.errors import DanmError

# typing costs milliseconds at import; this module is on the hot path and needs it only for mypy.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Final

    from danm.types import DanmNetConf

# Every CNI spec version danm speaks, oldest first.
SPEC_VERSIONS: Final = ("0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0")
LATEST_SPEC_VERSION: Final = "1.1.0"

VERSION_REPLY: Final = (
    b'{"cniVersion":"1.1.0","supportedVersions":["0.3.0","0.3.1","0.4.0","1.0.0","1.1.0"]}'
)

VERBS: Final = ("ADD", "DEL", "CHECK", "VERSION", "STATUS", "GC")

# The error codes, in one table. 1-99 are the CNI specification's; 100+ are danm's own.
ERR_INCOMPATIBLE_VERSION: Final = 1
ERR_UNSUPPORTED_FIELD: Final = 2
ERR_UNKNOWN_CONTAINER: Final = 3
ERR_INVALID_ENVIRONMENT: Final = 4  # missing or bad environment variables or CNI_ARGS
ERR_IO: Final = 5
ERR_DECODE: Final = 6  # stdin is not a decodable network config
ERR_INVALID_CONFIG: Final = 7  # invalid config, annotation or static address
ERR_TRY_AGAIN: Final = 11  # API server unreachable or deadline expired
ERR_NOT_READY: Final = 50
ERR_LIMITED_CONNECTIVITY: Final = 51
ERR_NETWORK_NOT_FOUND: Final = 100
ERR_ADDRESS_UNAVAILABLE: Final = 101  # pool exhausted or address in use
ERR_TENANT_NOT_ALLOWED: Final = 102  # the pod's namespace is not in AllowedTenants
ERR_LINK: Final = 103  # a link or network-namespace operation failed
ERR_DELEGATE: Final = 104  # a delegated CNI plugin failed
ERR_INTERNAL: Final = 999


class CniFailure(DanmError):
    """An error that ends a CNI invocation, with its CNI error code."""

    def __init__(self, code: int, msg: str, details: str = "") -> None:
        super().__init__(msg)
        self.code = code
        self.msg = msg
        self.details = details


def error_reply(failure: CniFailure, cni_version: str = LATEST_SPEC_VERSION) -> bytes:
    """The error document for stdout. msgspec is imported here, off the VERSION path."""
    import msgspec

    from danm.types import CniErrorReply

    reply = CniErrorReply(
        cni_version=cni_version, code=failure.code, msg=failure.msg, details=failure.details
    )
    return msgspec.json.encode(reply)


# CNI_ARGS keys danm understands (libcni LoadArgs semantics: others need IgnoreUnknown).
KNOWN_ARGS: Final = (
    "IgnoreUnknown",
    "IP",
    "K8S_POD_NAMESPACE",
    "K8S_POD_NAME",
    "K8S_POD_INFRA_CONTAINER_ID",
    "K8S_POD_UID",
)
_VERBS_NEEDING_NETNS: Final = ("ADD", "CHECK")
_VERBS_OF_A_CONTAINER: Final = ("ADD", "DEL", "CHECK")


class PodArgs:
    """The pod identity the runtime passes in CNI_ARGS."""

    def __init__(self, namespace: str, name: str, infra_container_id: str, uid: str) -> None:
        self.namespace = namespace
        self.name = name
        # what DanmEps record as CID and DEL matches on
        self.infra_container_id = infra_container_id
        self.uid = uid


def parse_cni_args(text: str, container_id: str, require_pod: bool, strict: bool = True) -> PodArgs:
    """Decode CNI_ARGS (``K=V;K=V``). Unknown keys are refused unless IgnoreUnknown is true.

    The sandbox's container ID is K8S_POD_INFRA_CONTAINER_ID, falling back to CNI_CONTAINERID
    (runtimes set both to the same value). ``require_pod``: the pod's namespace and name must be
    present (ADD, CHECK). ``strict`` False (DEL): malformed pairs and unknown keys are ignored,
    as a teardown must not fail forever over what an ADD would have refused.
    """
    values: dict[str, str] = {}
    unknown: list[str] = []
    for pair in text.split(";") if text else []:
        if not pair:
            continue
        key, sep, value = pair.partition("=")
        if not strict and (not sep or not key or key in values):
            continue
        if not sep or not key:
            raise CniFailure(ERR_INVALID_ENVIRONMENT, f"CNI_ARGS: malformed pair {pair!r}", "expected K=V pairs separated by ';'")
        if key in values:
            raise CniFailure(ERR_INVALID_ENVIRONMENT, f"CNI_ARGS: {key} given twice")
        values[key] = value
        if key not in KNOWN_ARGS:
            unknown.append(key)
    ignore_unknown = values.get("IgnoreUnknown", "").lower() in ("1", "true")
    if unknown and not ignore_unknown and strict:
        raise CniFailure(
            ERR_INVALID_ENVIRONMENT,
            "CNI_ARGS: unknown key(s) " + ", ".join(unknown),
            "set IgnoreUnknown=1 to ignore them",
        )
    if require_pod:
        for key in ("K8S_POD_NAMESPACE", "K8S_POD_NAME"):
            if not values.get(key):
                raise CniFailure(ERR_INVALID_ENVIRONMENT, f"CNI_ARGS: {key} is missing", "danm needs the pod's namespace and name")
    infra = values.get("K8S_POD_INFRA_CONTAINER_ID") or container_id
    if not infra:
        raise CniFailure(
            ERR_INVALID_ENVIRONMENT,
            "CNI_ARGS: K8S_POD_INFRA_CONTAINER_ID is missing and CNI_CONTAINERID is empty",
        )
    return PodArgs(
        values.get("K8S_POD_NAMESPACE", ""),
        values.get("K8S_POD_NAME", ""),
        infra,
        values.get("K8S_POD_UID", ""),
    )


class CniEnv:
    """The CNI_* environment of one invocation, checked for the verb."""

    def __init__(self, command: str, container_id: str, netns: str, ifname: str, path: str, args: str) -> None:
        self.command = command
        self.container_id = container_id
        self.netns = netns
        self.ifname = ifname
        self.path = path
        self.args = args


def parse_env(env: Mapping[str, str]) -> CniEnv:
    command = env.get("CNI_COMMAND", "")
    result = CniEnv(
        command,
        env.get("CNI_CONTAINERID", ""),
        env.get("CNI_NETNS", ""),
        env.get("CNI_IFNAME", ""),
        env.get("CNI_PATH", ""),
        env.get("CNI_ARGS", ""),
    )
    if command in _VERBS_OF_A_CONTAINER:
        required = ["CNI_CONTAINERID", "CNI_IFNAME"]
        if command in _VERBS_NEEDING_NETNS:
            required.append("CNI_NETNS")
        for name in required:
            if not env.get(name):
                raise CniFailure(ERR_INVALID_ENVIRONMENT, f"{name} is missing", f"CNI {command} needs {name}")
        if result.netns and not result.netns.startswith("/"):
            raise CniFailure(ERR_INVALID_ENVIRONMENT, f"CNI_NETNS must be an absolute path, got {result.netns!r}")
    return result


def decode_config(stdin: bytes) -> DanmNetConf:
    """The network config: code 6 when it is not JSON at all, 7 when a field is wrong."""
    import msgspec

    from danm.types import DanmNetConf

    try:
        conf = msgspec.json.decode(stdin, type=DanmNetConf)
    except msgspec.ValidationError as error:
        raise CniFailure(ERR_INVALID_CONFIG, f"invalid network config: {error}") from None
    except msgspec.DecodeError as undecodable:  # one name per exception type: mypyc types it
        raise CniFailure(ERR_DECODE, f"cannot decode the network config on stdin: {undecodable}") from None
    checks = (
        ("interfaceDeadlineSeconds", conf.interface_deadline > 0),
        ("maxConcurrentInvocations", conf.max_concurrent >= 0),
        ("delRetrySeconds", conf.del_retry_seconds >= 0),
        ("statusCacheSeconds", conf.status_cache_seconds >= 0),
        ("gcMinAgeSeconds", conf.gc_min_age >= 0),
        ("delegateDeadlineSeconds", conf.delegate_deadline > 0),
        ("logMaxBytes", conf.log_max_bytes >= 0),
        ("logBackups", conf.log_backups >= 0),
        ("logLevel", conf.log_level in ("debug", "info", "warning", "error")),
        ("namingScheme", conf.naming_scheme in ("", "legacy")),
    )
    for field, valid in checks:
        if not valid:
            raise CniFailure(ERR_INVALID_CONFIG, f"invalid network config: {field} is out of range")
    return conf


# The first spec version of each verb that came after 0.3.0 (the skel dispatcher's rule).
VERB_SINCE: Final = {"CHECK": "0.4.0", "STATUS": "1.1.0", "GC": "1.1.0"}


def check_verb_version(command: str, version: str) -> None:
    since = VERB_SINCE.get(command)
    if since is not None and SPEC_VERSIONS.index(version) < SPEC_VERSIONS.index(since):
        raise CniFailure(
            ERR_INCOMPATIBLE_VERSION,
            f"config version {version} does not allow {command}",
            f"{command} needs cniVersion {since} or later",
        )


def failure_from(error: BaseException) -> CniFailure:
    """The CNI error for an exception raised below the protocol layer (one table, here)."""
    from danm import annotation, ipam, kube, netlink

    if isinstance(error, CniFailure):
        return error
    message = str(error) or type(error).__name__
    code = ERR_INTERNAL
    if isinstance(error, annotation.AnnotationError):
        code = ERR_INVALID_CONFIG
    elif isinstance(error, ipam.IpamDeadlineError):
        code = ERR_TRY_AGAIN
    elif isinstance(error, (ipam.PoolExhaustedError, ipam.AddressInUseError)):
        code = ERR_ADDRESS_UNAVAILABLE
    elif isinstance(error, ipam.IpamError):
        code = ERR_INVALID_CONFIG
    elif isinstance(error, (kube.ConnectionFailed, kube.DeadlineExceeded, kube.ServerError, kube.TooManyRequests)):
        code = ERR_TRY_AGAIN
    elif isinstance(error, kube.ConfigError):
        code = ERR_INVALID_CONFIG
    elif isinstance(error, netlink.LinkError):
        code = ERR_LINK
    elif isinstance(error, TimeoutError):
        code = ERR_TRY_AGAIN
    return CniFailure(code, message)


def run(env: Mapping[str, str], stdin: bytes) -> tuple[int, bytes]:
    """Execute one CNI invocation; returns the exit status and the bytes for stdout."""
    command = env.get("CNI_COMMAND", "")
    version = LATEST_SPEC_VERSION
    try:
        if command == "VERSION":
            return 0, VERSION_REPLY
        if command not in VERBS:
            raise CniFailure(
                ERR_INVALID_ENVIRONMENT,
                f"unknown CNI_COMMAND {command!r}",
                "CNI_COMMAND must be one of " + ", ".join(VERBS),
            )
        cni_env = parse_env(env)
        conf = decode_config(stdin)
        from danm.cniresult import negotiate_version

        version = negotiate_version(conf.cni_version, conf.cni_versions or None)
        check_verb_version(command, version)
        from danm import invocation

        return 0, invocation.execute(cni_env, conf, version, env, stdin)
    except CniFailure as failure:
        return 1, error_reply(failure, version)
    except BaseException as crash:  # a bug still answers in CNI's terms, never a traceback
        if isinstance(crash, (KeyboardInterrupt, SystemExit)):
            raise
        return 1, error_reply(CniFailure(ERR_INTERNAL, f"internal error: {crash!r}"), version)


def main() -> int:
    env = os.environ
    command = env.get("CNI_COMMAND", "")
    # VERSION needs no input; everything else reads the network config from stdin.
    stdin = b"" if command == "VERSION" else sys.stdin.buffer.read()
    status, out = run(env, stdin)
    sys.stdout.buffer.write(out)
    sys.stdout.buffer.flush()
    return status
