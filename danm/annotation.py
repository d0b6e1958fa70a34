"""The pod annotation ``danm.io/interfaces``: one entry per interface the pod asks for.

The original decoded it with Go's encoding/json, which matches keys case-insensitively and also
accepted three internal field names. Pods written for it keep working here: keys are folded onto
the seven public names (``Network``, ``IP`` ... are accepted), while the internal names and
any other key are refused. Unlike the original, every error names the entry and the key, and
bad values (an address of the wrong family, a malformed policy route) are refused up front
instead of failing later or being skipped silently.
"""

import ipaddress
from typing import Final

import msgspec

from danm.errors import DanmError
from danm.types import InterfaceRequest

ANNOTATION_KEY: Final = "danm.io/interfaces"

# Lower-cased spelling -> the public wire name.
PUBLIC_KEYS: Final = {
    name.lower(): name
    for name in ("network", "tenantNetwork", "clusterNetwork", "ip", "ip6", "proutes", "proutes6")
}
# Fields of the original's internal struct that Go's decoder let pods set; never accepted here.
INTERNAL_KEYS: Final = {name.lower(): name for name in ("Device", "SequenceId", "DefaultIfaceName")}

NETWORK_KEYS: Final = ("network", "tenantNetwork", "clusterNetwork")
ADDRESS_KEYWORDS: Final = ("dynamic", "none")

_entries_decoder: Final = msgspec.json.Decoder(list[dict[str, msgspec.Raw]] | None)
_string_decoder: Final = msgspec.json.Decoder(str | None)
_routes_decoder: Final = msgspec.json.Decoder(dict[str, str] | None)


class AnnotationError(DanmError):
    """The annotation is malformed; ``index`` and ``key`` locate the problem when known."""

    def __init__(self, message: str, index: int | None = None, key: str | None = None) -> None:
        where = ANNOTATION_KEY
        if index is not None:
            where += f" entry {index}"
        if key is not None:
            where += f" key {key!r}"
        super().__init__(f"{where}: {message}")
        self.index = index
        self.key = key


def parse_interfaces(value: str | bytes) -> list[InterfaceRequest]:
    """Decode and validate the annotation value; ``[]`` and ``null`` mean "no interfaces"."""
    try:
        entries = _entries_decoder.decode(value)
    except msgspec.DecodeError as error:
        raise AnnotationError(f"must be a JSON list of objects: {error}") from error
    if entries is None:
        return []
    return [_parse_entry(index, entry) for index, entry in enumerate(entries)]


def _parse_entry(index: int, entry: dict[str, msgspec.Raw]) -> InterfaceRequest:
    strings: dict[str, str] = {}
    routes: dict[str, dict[str, str] | None] = {}
    seen: dict[str, str] = {}
    for key, raw in entry.items():
        folded = key.lower()
        name = PUBLIC_KEYS.get(folded)
        if name is None:
            if folded in INTERNAL_KEYS:
                raise AnnotationError(
                    "is an internal field of danm and cannot be set by a pod", index, key
                )
            raise AnnotationError(
                "is not a known key; expected one of " + ", ".join(PUBLIC_KEYS.values()),
                index,
                key,
            )
        if name in seen:
            raise AnnotationError(
                f"repeats {seen[name]!r} (keys are matched case-insensitively)", index, key
            )
        seen[name] = key
        try:
            if name.startswith("proutes"):
                routes[name] = _routes_decoder.decode(raw)
            else:
                strings[name] = _string_decoder.decode(raw) or ""
        except msgspec.ValidationError as error:
            expected = "an object of destination CIDR to gateway" if name.startswith("proutes") else "a string"
            raise AnnotationError(f"must be {expected}: {error}", index, key) from error

    references = [name for name in NETWORK_KEYS if strings.get(name)]
    if len(references) != 1:
        raise AnnotationError(
            f"must reference exactly one network (one of {', '.join(NETWORK_KEYS)}), "
            f"found {len(references)}",
            index,
        )
    request = InterfaceRequest(
        network=strings.get("network", ""),
        tenant_network=strings.get("tenantNetwork", ""),
        cluster_network=strings.get("clusterNetwork", ""),
        ip=strings.get("ip", ""),
        ip6=strings.get("ip6", ""),
        proutes=routes.get("proutes"),
        proutes6=routes.get("proutes6"),
    )
    _check_address(index, seen.get("ip", "ip"), request.ip, 4)
    _check_address(index, seen.get("ip6", "ip6"), request.ip6, 6)
    _check_routes(index, seen.get("proutes", "proutes"), request.proutes, 4)
    _check_routes(index, seen.get("proutes6", "proutes6"), request.proutes6, 6)
    return request


def _check_address(index: int, key: str, value: str, family: int) -> None:
    """``dynamic``, ``none``, empty, or a static address; a ``/prefix`` suffix is ignored."""
    if value == "" or value in ADDRESS_KEYWORDS:
        return
    if not _parses_as(value.split("/", 1)[0], family, as_network=False):
        raise AnnotationError(
            f"{value!r} is not 'dynamic', 'none' or an IPv{family} address", index, key
        )


def _check_routes(index: int, key: str, routes: dict[str, str] | None, family: int) -> None:
    for destination, gateway in (routes or {}).items():
        if not _parses_as(destination, family, as_network=True):
            raise AnnotationError(
                f"destination {destination!r} is not an IPv{family} CIDR", index, key
            )
        if not _parses_as(gateway, family, as_network=False):
            raise AnnotationError(
                f"gateway {gateway!r} of {destination!r} is not an IPv{family} address", index, key
            )


def _parses_as(text: str, family: int, as_network: bool) -> bool:
    try:
        if as_network:
            return ipaddress.ip_network(text, strict=False).version == family
        return ipaddress.ip_address(text).version == family
    except ValueError:
        return False
