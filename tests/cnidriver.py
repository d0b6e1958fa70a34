"""Build and run tests/cnidriver (a libcni front end) so tests drive CNI plugins as runtimes do.

The Go program is built offline in GOPATH mode against Debian's golang-github-appc-cni-dev,
statically (CGO_ENABLED=0) so the same binary also runs inside the user-mode-Linux guest. Builds
are cached by the sha256 of main.go; concurrent test processes each build into a private temp
directory and publish with an atomic rename, so they never see a half-written binary.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from testlib import REPO, clean_env

if TYPE_CHECKING:
    from collections.abc import Mapping

SOURCE: Final = REPO / "tests" / "cnidriver" / "main.go"
GOPATH: Final = "/usr/share/gocode"  # where Debian's golang-*-dev packages put their sources
DEBIAN_GO: Final = Path("/usr/lib/go-1.19/bin/go")
BUILD_TIMEOUT: Final = 600.0
EXIT_CNI_ERROR: Final = 2  # the plugin's own {"code","msg","details"} passed through by libcni
EXIT_OTHER_ERROR: Final = 3  # libcni or driver failure, printed as {"code": -1, "msg": ...}


def cache_root() -> Path:
    """$DANM_CNIDRIVER_CACHE, else /var/tmp/danm-cnidriver (survives reboots' /tmp cleanup)."""
    return Path(os.environ.get("DANM_CNIDRIVER_CACHE", "/var/tmp/danm-cnidriver"))


def go_binary() -> Path:
    """$DANM_GO, else Debian's go 1.19, else whatever `go` is on PATH."""
    configured = os.environ.get("DANM_GO")
    if configured:
        return Path(configured)
    if DEBIAN_GO.exists():
        return DEBIAN_GO
    found = shutil.which("go")
    if found is None:
        raise RuntimeError(f"no Go toolchain: install golang-1.19-go ({DEBIAN_GO}) or set DANM_GO")
    return Path(found)


def _build_failure(source: Path, output: str) -> RuntimeError:
    missing = sorted(set(re.findall(r'cannot find package "([^"]+)"', output)))
    hint = f"missing Go packages {', '.join(missing)} (GOPATH={GOPATH}); " if missing else ""
    return RuntimeError(f"building {source} failed: {hint}go said:\n{output}")


@functools.cache
def cni_driver() -> Path:
    """The cnidriver binary for the current main.go, built on first use."""
    return build_go_program(SOURCE, cache_root())


def build_go_program(source: Path, cache: Path) -> Path:
    """``cache``/<sha256 of source>/<source dir name>: built once, published atomically."""
    digest = hashlib.sha256(source.read_bytes()).hexdigest()
    target = cache / digest / source.parent.name
    if target.exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": os.environ.get("HOME", "/root"),
        "GO111MODULE": "off",  # no network for modules: resolve imports from GOPATH
        "GOPATH": GOPATH,
        "GOFLAGS": "",
        "GOENV": "off",  # ignore any user go.env that could turn modules or proxies back on
        "GOCACHE": str(cache / "gocache"),  # go locks its cache: sharing it is safe
        "CGO_ENABLED": "0",  # static: the UML guest shares the filesystem, not the libc setup
    }
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=".build-") as scratch:
        built = Path(scratch) / target.name
        try:
            done = subprocess.run(
                [str(go_binary()), "build", "-trimpath", "-o", str(built), source.name],
                cwd=source.parent,
                env=env,
                capture_output=True,
                text=True,
                timeout=BUILD_TIMEOUT,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired) as failure:
            raise RuntimeError(f"building {source} failed: {failure}") from failure
        if done.returncode != 0 or not built.exists():
            raise _build_failure(source, done.stdout + done.stderr)
        os.replace(built, target)
    return target


@dataclass(frozen=True)
class CniError:
    code: int
    msg: str
    details: str


@dataclass(frozen=True)
class DriverOutcome:
    returncode: int
    stdout: bytes
    stderr: str

    @property
    def error(self) -> CniError | None:
        """The plugin's CNI error when libcni passed one through (exit 2), else None."""
        if self.returncode != EXIT_CNI_ERROR:
            return None
        document = json.loads(self.stdout)
        return CniError(int(document["code"]), str(document["msg"]), str(document.get("details", "")))

    @property
    def failure_message(self) -> str:
        """The msg of a non-CNI failure (exit 3): libcni's or the driver's own error text."""
        if self.returncode != EXIT_OTHER_ERROR:
            return ""
        return str(json.loads(self.stdout)["msg"])

    def json(self) -> Any:
        """The decoded stdout of a successful add/version/validate; AssertionError otherwise."""
        if self.returncode != 0:
            raise AssertionError(f"cnidriver exited {self.returncode}: {self.stdout!r} {self.stderr}")
        return json.loads(self.stdout)


def run_driver(
    verb: str,
    conf: Path,
    *,
    container_id: str = "",
    netns: str = "",
    ifname: str = "eth0",
    args: str = "",
    capabilities: Mapping[str, Any] | None = None,
    cni_path: str,
    cache_dir: Path,
    env: dict[str, str] | None = None,
    timeout: float = 120,
) -> DriverOutcome:
    """Run `cnidriver <verb>` on ``conf`` (a .conflist is read as a list) with CNI_PATH set.

    The environment is this process's minus any CNI_* variables, so a plugin sees only what
    libcni passes; ``env`` adds to it.
    """
    argv = [str(cni_driver()), verb, "-conf", str(conf), "-ifname", ifname, "-cache", str(cache_dir)]
    if container_id:
        argv += ["-id", container_id]
    if netns:
        argv += ["-netns", netns]
    if args:
        argv += ["-args", args]
    if capabilities is not None:
        argv += ["-cap", json.dumps(capabilities)]
    full_env = clean_env(CNI_PATH=cni_path)
    full_env.update(env or {})
    done = subprocess.run(argv, env=full_env, capture_output=True, timeout=timeout, check=False)
    return DriverOutcome(done.returncode, done.stdout, done.stderr.decode(errors="replace"))
