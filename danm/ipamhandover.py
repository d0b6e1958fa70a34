"""How the addresses danm reserved reach a delegated CNI plugin: the IPAM section of its config.

A delegate (macvlan, sriov, a static plugin config) runs its IPAM plugin itself, so danm writes
the addresses into an IPAM section the plugin passes on. Two plugins can carry them:

- ``static``, the reference fixed-address IPAM plugin: the ecosystem's standard way, and a Go
  binary starts faster than Python;
- ``fakeipam``, danm's own binary under that name, for hosts without ``static``.

``DanmNetConf.ipam_plugin`` (``ipamPlugin``) chooses: ``auto`` takes ``static`` when CNI_PATH has
it. Pure apart from looking at CNI_PATH, and cheap to import: it runs inside every delegated ADD.
"""

from __future__ import annotations

import os

from danm.cni import ERR_INVALID_CONFIG, CniFailure

TYPE_CHECKING = False  # typing costs milliseconds at import; it is needed for mypy only
if TYPE_CHECKING:
    from typing import Final

FAKEIPAM: Final = "fakeipam"
STATIC: Final = "static"
AUTO: Final = "auto"
PREFERENCES: Final = (AUTO, STATIC, FAKEIPAM)
# what danm writes for "no address" (ip/ip6 not requested or "none")
_NO_ADDRESS: Final = ("", "none")


def find_plugin(name: str, cni_path: str) -> str:
    """The path of the executable file ``name`` in the first CNI_PATH directory holding one,
    "" when there is none (a directory or a non-executable file of that name does not count)."""
    for directory in cni_path.split(":"):
        if not directory:
            continue
        candidate = os.path.join(directory, name)
        if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return candidate
    return ""


def choose_plugin(preference: str, cni_path: str) -> str:
    """The IPAM plugin type for a delegate's config, from ``ipamPlugin`` and CNI_PATH.

    ``auto``: STATIC when CNI_PATH has an executable ``static``, else FAKEIPAM. An explicit
    choice must be in CNI_PATH: failing here names the setting, while failing inside the
    delegate would only say that some IPAM plugin was not found.
    """
    if preference == AUTO:
        return STATIC if find_plugin(STATIC, cni_path) else FAKEIPAM
    if preference in (STATIC, FAKEIPAM):
        if not find_plugin(preference, cni_path):
            raise CniFailure(
                ERR_INVALID_CONFIG,
                f"ipamPlugin is {preference!r}, but CNI_PATH {cni_path!r} has no executable {preference!r}",
                "install the plugin into a CNI_PATH directory, or set ipamPlugin to auto",
            )
        return preference
    raise CniFailure(
        ERR_INVALID_CONFIG,
        f"invalid network config: ipamPlugin must be one of {', '.join(PREFERENCES)}, got {preference!r}",
    )


def ipam_section(ip4: str, ip6: str, plugin: str) -> dict[str, object] | None:
    """The delegate's ``ipam`` for danm's reserved addresses (CIDR form, host bits kept).

    "" and "none" are no address; None when neither is real, so that the caller leaves the
    delegate's config without danm's IPAM (§4.4). IPv4 first, as the original wrote it.
    ``static`` gets bare ``addresses``: no gateway and no routes, because danm sets the pod's
    routes itself afterwards (§3.6), as it did with fakeipam.
    """
    family_addresses: list[tuple[int, str]] = []
    if ip4 not in _NO_ADDRESS:
        family_addresses.append((4, ip4))
    if ip6 not in _NO_ADDRESS:
        family_addresses.append((6, ip6))
    if not family_addresses:
        return None
    if plugin == FAKEIPAM:
        return {
            "type": FAKEIPAM,
            "ips": [{"ipcidr": address, "version": family} for family, address in family_addresses],
        }
    if plugin == STATIC:
        return {"type": STATIC, "addresses": [{"address": address} for _, address in family_addresses]}
    raise ValueError(f"unknown IPAM plugin {plugin!r}: expected {STATIC!r} or {FAKEIPAM!r}")
