"""fakeipam: the IPAM plugin that hands the addresses danm reserved to a delegated CNI plugin.

danm's cluster-wide IPAM has already reserved the pod's addresses when it runs a delegate
(macvlan, sriov, ...); the delegate's config names this plugin as its IPAM with the addresses in
``ipam.ips`` (danm.ipamhandover writes it), and the delegate execs it with its own config, so:

- fakeipam speaks every CNI version a delegate may use (the original spoke only 0.3.1, §11.14),
  including the legacy 0.1.0/0.2.0 ``ip4``/``ip6`` results, and answers VERSION for itself;
- ADD echoes ``ipam.ips`` back as the result: addresses keep their host bits, no interfaces,
  gateways or routes (danm sets the pod's routes itself), ``dns`` ``{}``;
- DEL, CHECK, STATUS and GC own nothing, so they succeed without output (each only in the
  config versions that have the verb, as the reference skel dispatcher rules).

It runs inside every delegated ADD, so it imports only msgspec and danm.cniresult, and those
only after the cheap checks. Error messages start with "fakeipam:" because the delegate relays
them inside its own error.
"""

from __future__ import annotations  # annotations name types that are imported for mypy only

import os
import sys

from danm.cni import (
    ERR_DECODE,
    ERR_INCOMPATIBLE_VERSION,
    ERR_INVALID_CONFIG,
    ERR_INVALID_ENVIRONMENT,
    CniFailure,
    error_reply,
)

TYPE_CHECKING = False  # typing costs milliseconds at import; it is needed for mypy only
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Any, Final

# Every CNI version a delegate may speak, oldest first.
VERSIONS: Final = ("0.1.0", "0.2.0", "0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0")
LATEST_VERSION: Final = "1.1.0"
# The spec: a config without cniVersion is a 0.1.0 config.
IMPLICIT_VERSION: Final = "0.1.0"
# Results of these versions have one ip4 and one ip6 object instead of an ips list.
LEGACY_VERSIONS: Final = ("0.1.0", "0.2.0")

# Precomputed, like danm's own: answering VERSION imports nothing. A test checks it against
# the typed VersionReply.
VERSION_REPLY: Final = (
    b'{"cniVersion":"1.1.0","supportedVersions":'
    b'["0.1.0","0.2.0","0.3.0","0.3.1","0.4.0","1.0.0","1.1.0"]}'
)

VERBS: Final = ("ADD", "DEL", "CHECK", "VERSION", "STATUS", "GC")
# The first config version of each verb that came after 0.1.0 (the skel dispatcher's rule).
VERB_SINCE: Final = {"CHECK": "0.4.0", "STATUS": "1.1.0", "GC": "1.1.0"}


class IpamAddress:
    """One ``ipam.ips`` entry, checked: ``address`` in canonical CIDR form with its host bits."""

    def __init__(self, address: str, is_ipv6: bool) -> None:
        self.address = address
        self.is_ipv6 = is_ipv6


def decode_config(stdin: bytes) -> dict[str, Any]:
    """The delegate's network config as plain JSON: fakeipam reads two keys of it."""
    import msgspec

    try:
        config = msgspec.json.decode(stdin)
    except msgspec.DecodeError as undecodable:
        raise CniFailure(ERR_DECODE, f"fakeipam: cannot decode the network config on stdin: {undecodable}") from None
    if not isinstance(config, dict):
        raise CniFailure(ERR_INVALID_CONFIG, "fakeipam: the network config is not a JSON object")
    return config


def config_version(config: dict[str, Any]) -> str:
    version = config.get("cniVersion", "")
    if not isinstance(version, str):
        raise CniFailure(ERR_INVALID_CONFIG, f"fakeipam: cniVersion must be a string, got {version!r}")
    version = version or IMPLICIT_VERSION
    if version not in VERSIONS:
        raise CniFailure(
            ERR_INCOMPATIBLE_VERSION,
            f"fakeipam: incompatible CNI versions: config is {version!r}",
            "fakeipam supports " + ", ".join(VERSIONS),
        )
    return version


def check_verb_version(command: str, version: str) -> None:
    since = VERB_SINCE.get(command)
    if since is not None and VERSIONS.index(version) < VERSIONS.index(since):
        raise CniFailure(
            ERR_INCOMPATIBLE_VERSION,
            f"fakeipam: config version {version} does not allow {command}",
            f"{command} needs cniVersion {since} or later",
        )


def parse_ips(config: dict[str, Any]) -> list[IpamAddress]:
    """``ipam.ips``: ``{"ipcidr": "<address>/<prefix>", "version": 4|6}`` entries, in order."""
    from ipaddress import ip_interface

    ipam = config.get("ipam")
    if not isinstance(ipam, dict):
        raise CniFailure(ERR_INVALID_CONFIG, "fakeipam: the network config has no ipam object")
    entries = ipam.get("ips")
    if entries is None or entries == []:
        raise CniFailure(ERR_INVALID_CONFIG, "fakeipam: no IP was passed: ipam.ips is empty")
    if not isinstance(entries, list):
        raise CniFailure(ERR_INVALID_CONFIG, "fakeipam: ipam.ips must be a list")
    addresses: list[IpamAddress] = []
    for position, entry in enumerate(entries):
        where = f"ipam.ips[{position}]"
        if not isinstance(entry, dict):
            raise CniFailure(ERR_INVALID_CONFIG, f"fakeipam: {where} must be an object, got {entry!r}")
        cidr = entry.get("ipcidr")
        family = entry.get("version")
        if not isinstance(cidr, str):
            raise CniFailure(ERR_INVALID_CONFIG, f"fakeipam: {where}.ipcidr must be a string, got {cidr!r}")
        # bool is an int subclass: true must not pass as a version
        if isinstance(family, bool) or family not in (4, 6):
            raise CniFailure(ERR_INVALID_CONFIG, f"fakeipam: {where}.version must be 4 or 6, got {family!r}")
        if "/" not in cidr:
            raise CniFailure(
                ERR_INVALID_CONFIG, f"fakeipam: {where}.ipcidr {cidr!r} has no prefix length"
            )
        try:
            interface = ip_interface(cidr)
        except ValueError as invalid:
            raise CniFailure(
                ERR_INVALID_CONFIG, f"fakeipam: {where}.ipcidr {cidr!r} is not an address in CIDR form: {invalid}"
            ) from None
        if interface.version != family:
            raise CniFailure(
                ERR_INVALID_CONFIG,
                f"fakeipam: {where}.ipcidr {cidr!r} is not an IPv{family} address, as its version says",
            )
        addresses.append(IpamAddress(str(interface), interface.version == 6))
    return addresses


def render_result(addresses: list[IpamAddress], version: str) -> bytes:
    """The ADD result in the config's version; danm.cniresult renders every non-legacy one."""
    if version in LEGACY_VERSIONS:
        return render_legacy(addresses, version)
    from danm.cniresult import Dns, IpConfig, Result, render

    return render(Result(ips=[IpConfig(address=ip.address) for ip in addresses], dns=Dns()), version)


def render_legacy(addresses: list[IpamAddress], version: str) -> bytes:
    """0.1.0/0.2.0: ``ip4`` and ``ip6`` objects, so at most one address per family.

    libcni's down-conversion keeps the first of each family silently; fakeipam's input is
    danm's own, so a second address of a family is a bug worth an error instead.
    """
    import msgspec

    document: dict[str, object] = {"cniVersion": version}
    for key, is_ipv6 in (("ip4", False), ("ip6", True)):
        family = [ip.address for ip in addresses if ip.is_ipv6 == is_ipv6]
        if len(family) > 1:
            raise CniFailure(
                ERR_INVALID_CONFIG,
                f"fakeipam: cniVersion {version} results carry one IPv{6 if is_ipv6 else 4} address, "
                f"ipam.ips has {len(family)}: {', '.join(family)}",
            )
        if family:
            document[key] = {"ip": family[0]}
    document["dns"] = {}
    return msgspec.json.encode(document)


def run(env: Mapping[str, str], stdin: bytes) -> tuple[int, bytes]:
    """One fakeipam invocation; returns the exit status and the bytes for stdout."""
    command = env.get("CNI_COMMAND", "")
    version = LATEST_VERSION
    try:
        if command == "VERSION":
            return 0, VERSION_REPLY
        if command not in VERBS:
            raise CniFailure(
                ERR_INVALID_ENVIRONMENT,
                f"fakeipam: unknown CNI_COMMAND {command!r}",
                "CNI_COMMAND must be one of " + ", ".join(VERBS),
            )
        config = decode_config(stdin)
        version = config_version(config)
        check_verb_version(command, version)
        if command != "ADD":
            return 0, b""  # nothing was allocated here, so there is nothing to free or check
        return 0, render_result(parse_ips(config), version)
    except CniFailure as failure:
        return 1, error_reply(failure, version)


def main() -> int:
    env = os.environ
    # VERSION needs no input; everything else reads the network config from stdin.
    stdin = b"" if env.get("CNI_COMMAND", "") == "VERSION" else sys.stdin.buffer.read()
    status, out = run(env, stdin)
    sys.stdout.buffer.write(out)
    sys.stdout.buffer.flush()
    return status
