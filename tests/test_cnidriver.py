"""The libcni driver, proved against Debian's reference plugins (bridge + host-local) and danm.

Every test works in its own netns, bridge and temp directory (named after the pid, so parallel
runs on the shared host don't collide) and removes them afterwards.
"""

import hashlib
import ipaddress
import json
import os
import shutil
import struct
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
import pytest

from cnidriver import SOURCE, DriverOutcome, build_go_program, cache_root, cni_driver, run_driver
from testlib import danm_binary

REFERENCE_PLUGINS = "/usr/lib/cni"
SUBNET = ipaddress.ip_network("10.251.7.0/24")



def ip(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", *argv], capture_output=True, text=True, check=False, timeout=30)


@dataclass
class Sandbox:
    netns: str
    bridge: str
    workdir: Path

    @property
    def netns_path(self) -> str:
        return f"/run/netns/{self.netns}"

    @property
    def cache_dir(self) -> Path:
        return self.workdir / "libcni-cache"

    @property
    def ipam_dir(self) -> Path:
        return self.workdir / "host-local"

    def write_conf(self, cni_version: str, *, as_list: bool = False) -> Path:
        # no isGateway: it would turn on the host's ip_forward sysctl, which is not ours to change
        plugin = {
            "type": "bridge",
            "bridge": self.bridge,
            "ipam": {"type": "host-local", "subnet": str(SUBNET), "dataDir": str(self.ipam_dir)},
        }
        header = {"cniVersion": cni_version, "name": "drvtest"}
        if as_list:
            path = self.workdir / "drvtest.conflist"
            path.write_text(json.dumps({**header, "plugins": [plugin]}))
        else:
            path = self.workdir / "drvtest.conf"
            path.write_text(json.dumps({**header, **plugin}))
        return path

    def run(self, verb: str, conf: Path, *, container_id: str = "c1", netns: str = "") -> DriverOutcome:
        return run_driver(
            verb,
            conf,
            container_id=container_id,
            netns=netns or self.netns_path,
            cni_path=REFERENCE_PLUGINS,
            cache_dir=self.cache_dir,
        )


@pytest.fixture
def workdir() -> Iterator[Path]:
    """A temp directory removed afterwards (pytest's tmp_path keeps the last runs)."""
    path = Path(tempfile.mkdtemp(prefix="cnidriver-test-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def sandbox(workdir: Path) -> Iterator[Sandbox]:
    tag = f"{os.getpid() % 1000000}"
    box = Sandbox(f"cnidrv-{tag}", f"cdrv{tag}", workdir)
    created = ip("netns", "add", box.netns)
    assert created.returncode == 0, created.stderr
    try:
        yield box
    finally:
        ip("netns", "del", box.netns)
        ip("link", "del", box.bridge)  # absent when ADD never got that far: the error is expected


def test_build_is_cached_by_source_hash() -> None:
    binary = cni_driver()
    digest = hashlib.sha256(SOURCE.read_bytes()).hexdigest()
    assert binary == cache_root() / digest / "cnidriver"
    assert os.access(binary, os.X_OK)
    assert cni_driver() == binary
    assert not list(binary.parent.glob(".build-*")), "temp build directories left behind"


PT_INTERP = 3  # the ELF program header naming a dynamic loader


def test_driver_is_static_for_the_uml_guest() -> None:
    image = cni_driver().read_bytes()
    assert image[:5] == b"\x7fELF\x02", "expected a 64-bit ELF"
    (phoff,) = struct.unpack_from("<Q", image, 0x20)
    phentsize, phnum = struct.unpack_from("<HH", image, 0x36)
    kinds = [struct.unpack_from("<I", image, phoff + i * phentsize)[0] for i in range(phnum)]
    assert PT_INTERP not in kinds, "cnidriver is dynamically linked"


def test_build_failure_names_the_missing_package(workdir: Path) -> None:
    source = workdir / "broken" / "main.go"
    source.parent.mkdir()
    source.write_text('package main\n\nimport _ "example.invalid/nowhere"\n\nfunc main() {}\n')
    with pytest.raises(RuntimeError, match="missing Go packages example.invalid/nowhere"):
        build_go_program(source, workdir / "cache")
    assert not list((workdir / "cache").glob("*/.build-*")), "temp build directory left behind"


def eth0_addresses(netns: str) -> list[str]:
    shown = ip("-n", netns, "-j", "addr", "show", "dev", "eth0")
    assert shown.returncode == 0, shown.stderr
    return [f"{a['local']}/{a['prefixlen']}" for link in json.loads(shown.stdout) for a in link["addr_info"]]


@pytest.mark.parametrize(
    ("cni_version", "as_list"),
    [("1.0.0", False), ("0.4.0", False), ("1.0.0", True)],
    ids=["1.0.0", "0.4.0", "list"],
)
def test_bridge_add_check_del(sandbox: Sandbox, cni_version: str, as_list: bool) -> None:
    conf = sandbox.write_conf(cni_version, as_list=as_list)

    result = sandbox.run("add", conf).json()
    assert result["cniVersion"] == cni_version
    [assigned] = result["ips"]
    address = ipaddress.ip_interface(assigned["address"])
    assert address.network == SUBNET
    # 0.3.x/0.4.0 results carry "version" per IP; 1.0.0 dropped it: proves the per-version rendering
    assert assigned.get("version") == ("4" if cni_version == "0.4.0" else None)
    container_side = result["interfaces"][assigned["interface"]]
    assert (container_side["name"], container_side["sandbox"]) == ("eth0", sandbox.netns_path)
    assert str(address) in eth0_addresses(sandbox.netns)
    assert (sandbox.ipam_dir / "drvtest" / str(address.ip)).exists()
    cached = list((sandbox.cache_dir / "results").iterdir())
    assert [path.name for path in cached] == ["drvtest-c1-eth0"]

    checked = sandbox.run("check", conf)
    assert (checked.returncode, checked.stdout) == (0, b""), checked.stderr

    deleted = sandbox.run("del", conf)
    assert (deleted.returncode, deleted.stdout) == (0, b""), deleted.stderr
    assert not (sandbox.ipam_dir / "drvtest" / str(address.ip)).exists()
    assert ip("-n", sandbox.netns, "link", "show", "eth0").returncode != 0
    assert not list((sandbox.cache_dir / "results").iterdir())

    # libcni 1.1.2 ignores a missing cache file: CHECK reaches the plugin without prevResult,
    # and the plugin's own error comes back through libcni (exit 2), not a libcni failure
    orphan = sandbox.run("check", conf)
    assert orphan.error is not None and "c1" in orphan.error.msg, orphan

    again = sandbox.run("del", conf)
    assert (again.returncode, again.stdout) == (0, b""), again.stderr


def test_check_refused_before_0_4_0(sandbox: Sandbox) -> None:
    conf = sandbox.write_conf("0.3.1")
    refused = sandbox.run("check", conf)
    assert refused.returncode == 3
    assert "does not support the CHECK command" in refused.failure_message


def test_plugin_error_passes_through(sandbox: Sandbox) -> None:
    conf = sandbox.write_conf("1.0.0")
    missing = f"/run/netns/{sandbox.netns}-absent"
    failed = sandbox.run("add", conf, netns=missing)
    assert failed.returncode == 2
    assert failed.error is not None
    assert failed.error.code == 999  # skel's code for a plugin error that is not a types.Error
    assert missing in failed.error.msg


def test_version_of_bridge(sandbox: Sandbox) -> None:
    versions = sandbox.run("version", sandbox.write_conf("1.0.0")).json()["supportedVersions"]
    assert {"0.3.1", "0.4.0", "1.0.0"} <= set(versions)


def test_unknown_verb_is_a_driver_failure(sandbox: Sandbox) -> None:
    failed = sandbox.run("frobnicate", sandbox.write_conf("1.0.0"))
    assert failed.returncode == 3 and "frobnicate" in failed.failure_message


def test_danm_answers_version_through_libcni(workdir: Path) -> None:
    plugins = workdir / "bin"
    plugins.mkdir()
    (plugins / "danm").symlink_to(danm_binary())
    conf = workdir / "danm.conf"
    conf.write_text(json.dumps({"cniVersion": "1.1.0", "name": "danm-net", "type": "danm"}))
    outcome = run_driver("version", conf, cni_path=str(plugins), cache_dir=workdir / "cache")
    assert outcome.json()["supportedVersions"] == ["0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"]
    assert not (workdir / "cache").exists(), "VERSION must not touch the libcni cache"
