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


def run(env: Mapping[str, str], stdin: bytes) -> tuple[int, bytes]:
    """Execute one CNI invocation; returns the exit status and the bytes for stdout."""
    command = env.get("CNI_COMMAND", "")
    try:
        if command == "VERSION":
            return 0, VERSION_REPLY
        if command not in VERBS:
            raise CniFailure(
                ERR_INVALID_ENVIRONMENT,
                f"unknown CNI_COMMAND {command!r}",
                "CNI_COMMAND must be one of " + ", ".join(VERBS),
            )
        raise CniFailure(ERR_INTERNAL, f"danm cni: {command} is not implemented yet")
    except CniFailure as failure:
        return 1, error_reply(failure)


def main() -> int:
    env = os.environ
    command = env.get("CNI_COMMAND", "")
    # VERSION needs no input; everything else reads the network config from stdin.
    stdin = b"" if command == "VERSION" else sys.stdin.buffer.read()
    status, out = run(env, stdin)
    sys.stdout.buffer.write(out)
    sys.stdout.buffer.flush()
    return status
