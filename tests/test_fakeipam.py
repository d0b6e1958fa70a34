"""fakeipam and the IPAM hand-over to delegates, with real binaries and a real kernel.

fakeipam runs as a process (a symlink named fakeipam to the installed danm console script), in
every CNI version. The reference macvlan plugin (Debian's containernetworking-plugins) is ADDed
by hand into a fresh network namespace on a host veth, once with fakeipam and once with the
reference static IPAM plugin as its IPAM, with the dual-stack section danm.ipamhandover writes.
Everything created carries NAME_PREFIX and is removed; a module-wide check looks for leftovers.
"""

from __future__ import annotations

import json
import os
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import msgspec
import pytest

from danm import fakeipam
from danm.cni import CniFailure
from danm.cniresult import parse_result
from danm.ipamhandover import FAKEIPAM, STATIC, choose_plugin, ipam_section
from danm.types import (
    CniDns,
    CniErrorReply,
    IpConfigV03,
    IpConfigV1,
    ResultV03,
    ResultV1,
    VersionReply,
)
from testlib import clean_env, danm_binary

REFERENCE_PLUGINS = Path("/usr/lib/cni")
MACVLAN = REFERENCE_PLUGINS / "macvlan"
NETNS_DIR = Path("/run/netns")
NAME_PREFIX = "dfi"
V4 = "10.232.0.65/26"  # host bits set on purpose: they must survive
V6 = "fd00:232::41/64"

LEGACY = ("0.1.0", "0.2.0")
V03 = ("0.3.0", "0.3.1", "0.4.0")
V1 = ("1.0.0", "1.1.0")


def unique() -> str:
    return f"{NAME_PREFIX}{uuid.uuid4().hex[:8]}"


def run_plugin(
    binary: Path, command: str, stdin: bytes, **env: str
) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [str(binary)], env=clean_env(CNI_COMMAND=command, **env), input=stdin,
        capture_output=True, timeout=60, check=False,
    )


def config(version: str, ipam: object, **extra: object) -> bytes:
    document: dict[str, object] = {"cniVersion": version, "name": "dfi-net", "type": "macvlan"}
    document.update(extra)
    document["ipam"] = ipam
    return json.dumps(document).encode()


def fakeipam_section(*ips: tuple[str, object]) -> dict[str, object]:
    return {"type": "fakeipam", "ips": [{"ipcidr": cidr, "version": family} for cidr, family in ips]}


@pytest.fixture(scope="module")
def plugin_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A CNI_PATH directory holding fakeipam, as danm's installer lays it out."""
    directory = tmp_path_factory.mktemp("cni-bin")
    (directory / "fakeipam").symlink_to(danm_binary())
    return directory


@pytest.fixture(scope="module")
def fakeipam_binary(plugin_dir: Path) -> Path:
    return plugin_dir / "fakeipam"


# ------------------------------------------------------------------------------------------
# fakeipam as a process: ADD in every version


@pytest.mark.parametrize("version", fakeipam.VERSIONS)
def test_add_result_in_the_config_version(version: str, fakeipam_binary: Path) -> None:
    section = ipam_section(V4, V6.upper(), FAKEIPAM)
    done = run_plugin(fakeipam_binary, "ADD", config(version, section))
    assert done.returncode == 0 and done.stderr == b"", done
    # addresses keep their host bits; IPv6 comes back in canonical (lower-case) form
    if version in LEGACY:
        assert json.loads(done.stdout) == {
            "cniVersion": version, "ip4": {"ip": V4}, "ip6": {"ip": V6}, "dns": {}
        }
    elif version in V03:
        assert msgspec.json.decode(done.stdout, type=ResultV03) == ResultV03(
            cni_version=version,
            ips=[IpConfigV03(version="4", address=V4), IpConfigV03(version="6", address=V6)],
            dns=CniDns(),
        )
    else:
        assert version in V1
        assert msgspec.json.decode(done.stdout, type=ResultV1) == ResultV1(
            cni_version=version, ips=[IpConfigV1(address=V4), IpConfigV1(address=V6)], dns=CniDns()
        )
    # nothing else: no interfaces, routes or gateways, and "dns" present but empty
    document = json.loads(done.stdout)
    assert sorted(document) == (["cniVersion", "dns", "ip4", "ip6"] if version in LEGACY else ["cniVersion", "dns", "ips"])
    assert document["dns"] == {}
    assert "gateway" not in done.stdout.decode()


def test_add_without_cni_version_is_a_0_1_0_result(fakeipam_binary: Path) -> None:
    stdin = json.dumps({"name": "n", "ipam": fakeipam_section((V6, 6))}).encode()
    done = run_plugin(fakeipam_binary, "ADD", stdin)
    assert done.returncode == 0, done
    assert json.loads(done.stdout) == {"cniVersion": "0.1.0", "ip6": {"ip": V6}, "dns": {}}


def test_add_keeps_the_order_and_every_address(fakeipam_binary: Path) -> None:
    ips = [("fd00:232::7/64", 6), ("10.232.0.7/26", 4), ("10.232.0.8/26", 4)]
    done = run_plugin(fakeipam_binary, "ADD", config("1.0.0", fakeipam_section(*ips)))
    assert done.returncode == 0, done
    assert [ip.address for ip in parse_result(done.stdout).ips] == [cidr for cidr, _ in ips]


# ------------------------------------------------------------------------------------------
# fakeipam: errors


ERROR_CASES: list[tuple[str, str, bytes, int, str]] = [
    ("undecodable", "ADD", b"{not json", 6, "cannot decode"),
    ("empty stdin", "ADD", b"", 6, "cannot decode"),
    ("empty stdin, DEL", "DEL", b"", 6, "cannot decode"),
    ("not an object", "ADD", b"[]", 7, "not a JSON object"),
    ("unknown version", "ADD", config("0.5.0", fakeipam_section((V4, 4))), 1, "'0.5.0'"),
    ("unknown version, DEL", "DEL", config("2.0.0", None), 1, "'2.0.0'"),
    ("version not a string", "ADD", b'{"cniVersion": 1.0}', 7, "cniVersion"),
    ("no ipam", "ADD", b'{"cniVersion": "0.3.1"}', 7, "ipam"),
    ("no ips", "ADD", config("0.3.1", {"type": "fakeipam"}), 7, "no IP was passed"),
    ("empty ips", "ADD", config("0.3.1", fakeipam_section()), 7, "no IP was passed"),
    ("ips not a list", "ADD", config("0.3.1", {"ips": {"ipcidr": V4}}), 7, "ipam.ips must be a list"),
    ("entry not an object", "ADD", config("0.3.1", {"ips": [V4]}), 7, "ipam.ips[0]"),
    ("bad address", "ADD", config("0.3.1", fakeipam_section((V4, 4), ("10.232.0.300/26", 4))), 7, "ipam.ips[1].ipcidr '10.232.0.300/26'"),
    ("bad prefix", "ADD", config("0.3.1", fakeipam_section(("10.232.0.1/33", 4))), 7, "ipam.ips[0].ipcidr '10.232.0.1/33'"),
    ("no prefix", "ADD", config("1.0.0", fakeipam_section(("10.232.0.1", 4))), 7, "ipam.ips[0].ipcidr '10.232.0.1' has no prefix"),
    ("no ipcidr", "ADD", config("1.0.0", {"ips": [{"version": 4}]}), 7, "ipam.ips[0].ipcidr must be a string"),
    ("v6 declared v4", "ADD", config("1.0.0", fakeipam_section((V6, 4))), 7, f"ipam.ips[0].ipcidr {V6!r} is not an IPv4"),
    ("v4 declared v6", "ADD", config("1.0.0", fakeipam_section((V4, 6))), 7, f"ipam.ips[0].ipcidr {V4!r} is not an IPv6"),
    ("version 5", "ADD", config("1.0.0", fakeipam_section((V4, 5))), 7, "ipam.ips[0].version must be 4 or 6, got 5"),
    ("version as text", "ADD", config("1.0.0", fakeipam_section((V4, "4"))), 7, "ipam.ips[0].version"),
    ("version true", "ADD", config("1.0.0", fakeipam_section((V4, True))), 7, "ipam.ips[0].version"),
    ("two v4 in 0.2.0", "ADD", config("0.2.0", fakeipam_section((V4, 4), ("10.232.0.66/26", 4))), 7, "one IPv4 address"),
    ("unknown command", "BOGUS", config("1.0.0", None), 4, "'BOGUS'"),
    ("lower-case command", "add", config("1.0.0", None), 4, "'add'"),
    ("CHECK before 0.4.0", "CHECK", config("0.3.1", None), 1, "does not allow CHECK"),
    ("STATUS before 1.1.0", "STATUS", config("1.0.0", None), 1, "does not allow STATUS"),
    ("GC before 1.1.0", "GC", config("0.4.0", None), 1, "does not allow GC"),
]


@pytest.mark.parametrize(
    ("command", "stdin", "code", "culprit"),
    [case[1:] for case in ERROR_CASES],
    ids=[case[0] for case in ERROR_CASES],
)
def test_errors_carry_their_code_and_name_the_culprit(
    command: str, stdin: bytes, code: int, culprit: str, fakeipam_binary: Path
) -> None:
    done = run_plugin(fakeipam_binary, command, stdin)
    assert done.returncode == 1, done
    error = msgspec.json.decode(done.stdout, type=CniErrorReply)
    assert error.code == code and culprit in error.msg, error
    assert error.msg.startswith("fakeipam: "), "the delegate relays it: the source must show"


def test_an_error_is_in_the_config_version(fakeipam_binary: Path) -> None:
    done = run_plugin(fakeipam_binary, "ADD", config("0.4.0", fakeipam_section()))
    assert msgspec.json.decode(done.stdout, type=CniErrorReply).cni_version == "0.4.0"


# ------------------------------------------------------------------------------------------
# fakeipam: the verbs that own nothing, and VERSION

QUIET_VERBS = (
    [("DEL", version) for version in fakeipam.VERSIONS]
    + [("CHECK", version) for version in fakeipam.VERSIONS[fakeipam.VERSIONS.index("0.4.0"):]]
    + [("STATUS", "1.1.0"), ("GC", "1.1.0")]
)


@pytest.mark.parametrize(("command", "version"), QUIET_VERBS)
def test_del_check_status_gc_succeed_silently(command: str, version: str, fakeipam_binary: Path) -> None:
    done = run_plugin(fakeipam_binary, command, config(version, fakeipam_section((V4, 4), (V6, 6))))
    assert (done.returncode, done.stdout, done.stderr) == (0, b"", b"")


def test_del_needs_no_addresses(fakeipam_binary: Path) -> None:
    """DEL must not fail on what ADD would refuse: the runtime retries a failed DEL forever."""
    done = run_plugin(fakeipam_binary, "DEL", config("0.3.1", {"type": "fakeipam", "ips": "garbage"}))
    assert (done.returncode, done.stdout) == (0, b"")


def test_version_is_its_own(fakeipam_binary: Path) -> None:
    done = run_plugin(fakeipam_binary, "VERSION", b'{"cniVersion": "0.3.1"}')
    assert done.returncode == 0 and done.stderr == b""
    reply = msgspec.json.decode(done.stdout, type=VersionReply)
    assert reply.supported_versions == ["0.1.0", "0.2.0", "0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"]
    assert reply.cni_version == "1.1.0"


def test_precomputed_version_reply_matches_the_model() -> None:
    typed = VersionReply(cni_version=fakeipam.LATEST_VERSION, supported_versions=list(fakeipam.VERSIONS))
    assert fakeipam.VERSION_REPLY == msgspec.json.encode(typed)


def test_add_imports_nothing_slow(fakeipam_binary: Path) -> None:
    """fakeipam runs inside every delegated ADD (-X importtime of a whole ADD)."""
    done = subprocess.run(
        [danm_binary().parent / "python", "-X", "importtime", str(fakeipam_binary)],
        env=clean_env(CNI_COMMAND="ADD"), input=config("0.3.1", fakeipam_section((V4, 4))),
        capture_output=True, timeout=60, check=False,
    )
    assert done.returncode == 0, done
    imported = {line.split("|")[-1].strip() for line in done.stderr.decode().splitlines()[1:]}
    # the measurement sees the imports (danm's own modules only when interpreted: mypyc
    # initialises compiled modules natively)
    assert "msgspec" in imported
    slow = ("typer", "click", "kubernetes", "pyroute2", "grpc", "asyncio", "logging", "danm.ipam", "danm.kube")
    assert not {name for name in imported for prefix in slow if name == prefix or name.startswith(prefix + ".")}


# ------------------------------------------------------------------------------------------
# choosing the IPAM plugin and writing its section


def executable(path: Path) -> Path:
    path.write_text("#!/bin/sh\nexit 0\n")
    path.chmod(0o755)
    return path


def test_auto_prefers_an_executable_static(tmp_path: Path) -> None:
    first, second = tmp_path / "first", tmp_path / "second"
    first.mkdir()
    second.mkdir()
    cni_path = f"{first}::{second}"
    assert choose_plugin("auto", cni_path) == FAKEIPAM
    (first / "static").write_text("not executable")
    assert choose_plugin("auto", cni_path) == FAKEIPAM
    (second / "static").mkdir()  # a directory of that name is no plugin either
    assert choose_plugin("auto", cni_path) == FAKEIPAM
    (second / "static").rmdir()
    executable(second / "static")
    assert choose_plugin("auto", cni_path) == STATIC
    assert choose_plugin("auto", "") == FAKEIPAM


def test_auto_on_this_host_takes_the_reference_static() -> None:
    assert (REFERENCE_PLUGINS / "static").exists(), "install containernetworking-plugins (.ci/run does)"
    assert choose_plugin("auto", f"/nonexistent:{REFERENCE_PLUGINS}") == STATIC


@pytest.mark.parametrize("choice", [STATIC, FAKEIPAM])
def test_an_explicit_choice_must_be_in_cni_path(choice: str, tmp_path: Path) -> None:
    with pytest.raises(CniFailure) as missing:
        choose_plugin(choice, str(tmp_path))
    assert missing.value.code == 7
    assert "ipamPlugin" in missing.value.msg and str(tmp_path) in missing.value.msg
    assert "CNI_PATH" in missing.value.msg
    executable(tmp_path / choice)
    assert choose_plugin(choice, str(tmp_path)) == choice


@pytest.mark.parametrize("preference", ["", "Static", "host-local", "none"])
def test_an_unknown_preference_names_ipam_plugin(preference: str, tmp_path: Path) -> None:
    executable(tmp_path / "static")
    with pytest.raises(CniFailure) as invalid:
        choose_plugin(preference, str(tmp_path))
    assert invalid.value.code == 7 and "ipamPlugin" in invalid.value.msg
    assert repr(preference) in invalid.value.msg


def test_ipam_sections() -> None:
    assert ipam_section(V4, V6, FAKEIPAM) == {
        "type": "fakeipam", "ips": [{"ipcidr": V4, "version": 4}, {"ipcidr": V6, "version": 6}]
    }
    assert ipam_section(V4, V6, STATIC) == {"type": "static", "addresses": [{"address": V4}, {"address": V6}]}
    assert ipam_section("none", V6, FAKEIPAM) == {"type": "fakeipam", "ips": [{"ipcidr": V6, "version": 6}]}
    assert ipam_section(V4, "", STATIC) == {"type": "static", "addresses": [{"address": V4}]}
    for plugin in (FAKEIPAM, STATIC):
        assert ipam_section("", "none", plugin) is None
        assert ipam_section("none", "", plugin) is None
    with pytest.raises(ValueError, match="host-local"):
        ipam_section(V4, V6, "host-local")


# ------------------------------------------------------------------------------------------
# the reference macvlan plugin with fakeipam or static as its IPAM, in a real netns


def ip(*args: str) -> str:
    done = subprocess.run(["ip", *args], capture_output=True, text=True, check=False)
    assert done.returncode == 0, f"ip {' '.join(args)}: {done.stderr}"
    return done.stdout


def ours() -> set[str]:
    links = {entry["ifname"] for entry in json.loads(ip("-j", "link", "show") or "[]")}
    netns = set(os.listdir(NETNS_DIR)) if NETNS_DIR.exists() else set()
    return {name for name in links | netns if name.startswith(NAME_PREFIX)}


@pytest.fixture(scope="module", autouse=True)
def host_untouched() -> Iterator[None]:
    assert not ours(), "leftovers of an earlier run"
    yield
    assert not ours(), "links or namespaces of ours left on the host"


@pytest.fixture(scope="module")
def macvlan_versions() -> list[str]:
    assert MACVLAN.exists(), f"{MACVLAN} is not installed (Debian: containernetworking-plugins; .ci/run installs it)"
    done = run_plugin(MACVLAN, "VERSION", b"{}")
    assert done.returncode == 0, done
    return msgspec.json.decode(done.stdout, type=VersionReply).supported_versions


class Host:
    """A veth pair on the host (the macvlan master and its peer, both up) and a pod netns."""

    def __init__(self) -> None:
        self.master, self.peer, self.ns = unique(), unique(), unique()
        self.netns = str(NETNS_DIR / self.ns)

    def create(self) -> None:
        ip("link", "add", self.master, "type", "veth", "peer", "name", self.peer)
        ip("link", "set", self.master, "up")
        ip("link", "set", self.peer, "up")
        ip("netns", "add", self.ns)

    def remove(self) -> None:
        subprocess.run(["ip", "netns", "del", self.ns], capture_output=True, check=False)
        subprocess.run(["ip", "link", "del", self.master], capture_output=True, check=False)


@pytest.fixture
def host() -> Iterator[Host]:
    created = Host()
    try:
        created.create()
        yield created
    finally:
        created.remove()


def pod_addresses(ns: str, ifname: str) -> set[str]:
    found = json.loads(ip("-n", ns, "-j", "addr", "show", "dev", ifname))
    return {f"{info['local']}/{info['prefixlen']}" for info in found[0]["addr_info"] if info["scope"] == "global"}


@pytest.mark.parametrize("version", ["0.2.0", "0.3.1", "0.4.0", "1.0.0"])
@pytest.mark.parametrize("choice", [FAKEIPAM, STATIC])
def test_macvlan_gets_danm_addresses_through_its_ipam(
    choice: str, version: str, host: Host, plugin_dir: Path, macvlan_versions: list[str]
) -> None:
    assert version in macvlan_versions, f"macvlan does not speak {version} (VERSION lists {macvlan_versions})"
    cni_path = f"{plugin_dir}:{REFERENCE_PLUGINS}"
    plugin = choose_plugin(choice, cni_path)
    assert plugin == choice
    # what danm writes for a delegated macvlan (§4.4), with the IPAM plugin chosen
    stdin = config(version, ipam_section(V4, V6, plugin), master=host.master, mode="bridge", mtu=1500)
    env = {"CNI_CONTAINERID": "dfi-sandbox", "CNI_NETNS": host.netns, "CNI_IFNAME": "net1", "CNI_PATH": cni_path}

    added = run_plugin(MACVLAN, "ADD", stdin, **env)
    assert added.returncode == 0, added
    result = parse_result(added.stdout)
    assert [ip.address for ip in result.ips] == [V4, V6]
    assert pod_addresses(host.ns, "net1") == {V4, V6}

    if version in ("0.4.0", "1.0.0"):
        # macvlan's CHECK runs its IPAM's CHECK too
        with_prev = json.loads(stdin)
        with_prev["prevResult"] = json.loads(added.stdout)
        checked = run_plugin(MACVLAN, "CHECK", json.dumps(with_prev).encode(), **env)
        assert checked.returncode == 0, checked

    for _ in range(2):  # DEL is repeatable
        deleted = run_plugin(MACVLAN, "DEL", stdin, **env)
        assert deleted.returncode == 0, deleted
    links = json.loads(ip("-n", host.ns, "-j", "link", "show"))
    assert [link["ifname"] for link in links] == ["lo"]
