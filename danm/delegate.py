"""Running other CNI plugins ("delegates"): finding them, their versions, their processes.

* ``NetworkType`` becomes a binary name and ``NetworkID`` a file name, both written by users:
  ``check_name`` refuses anything but ``[A-Za-z0-9_.-]+`` (and ``.``/``..``) before any exec or
  file read.
* Each run has its own deadline; a delegate still running then is killed with its whole process
  group (it runs in a session of its own), so no orphan (an IPAM child, say) survives.
* Each delegate is talked to in the highest CNI version it supports. Its VERSION answer is asked
  once and cached under ``runDir``, keyed by the binary's path, size and mtime.
* A delegate's CNI error becomes a danm error naming the network and the plugin.
"""

from __future__ import annotations

import os
import time
from typing import TYPE_CHECKING, Final

from danm.cni import ERR_DELEGATE, ERR_INVALID_CONFIG, ERR_TRY_AGAIN, CniFailure

if TYPE_CHECKING:
    import subprocess
    from collections.abc import Mapping

    from danm.cniresult import Result

SAFE_CHARACTERS: Final = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-")
# Every result format danm can read, oldest first (0.1.0/0.2.0: the legacy ip4/ip6 form).
READABLE_VERSIONS: Final = ("0.1.0", "0.2.0", "0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0")
# Plugins that answer no VERSION (before 0.2.0's VERSION command) speak 0.1.0 (libcni's rule).
LEGACY_VERSION: Final = "0.1.0"
_KILL_GRACE: Final = 2.0


def check_name(field: str, value: str) -> None:
    """``value`` is safe as a binary or file name (no path, no traversal), else code 7."""
    if not value or value in (".", "..") or any(char not in SAFE_CHARACTERS for char in value):
        raise CniFailure(
            ERR_INVALID_CONFIG,
            f"{field} {value!r} is refused: only letters, digits, '_', '.' and '-' are allowed, "
            "and not '.' or '..'",
        )


def find_binary(name: str, cni_path: str) -> str:
    """The executable ``name`` in the first CNI_PATH directory that has it."""
    check_name("NetworkType", name)
    for directory in cni_path.split(os.pathsep):
        if not directory:
            continue
        candidate = os.path.join(directory, name)
        if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return candidate
    raise CniFailure(ERR_DELEGATE, f"CNI plugin {name} is not in CNI_PATH ({cni_path or 'empty'})")


class PluginRun:
    """What one execution of a plugin gave."""

    def __init__(self, returncode: int, stdout: bytes, stderr: bytes, elapsed: float) -> None:
        self.returncode = returncode
        self.stdout = stdout
        self.stderr = stderr
        self.elapsed = elapsed


def delegate_environment(
    environ: Mapping[str, str], command: str, ifname: str, overrides: Mapping[str, str] | None = None
) -> dict[str, str]:
    """The runtime's environment with ``CNI_COMMAND`` and danm's interface name; CNI_ARGS keeps
    the runtime's pairs plus IgnoreUnknown=1 (delegates do not know K8S_POD_*)."""
    env = dict(environ)
    env["CNI_COMMAND"] = command
    env["CNI_IFNAME"] = ifname
    args = env.get("CNI_ARGS", "")
    pairs = [pair for pair in args.split(";") if pair]
    if not any(pair.split("=", 1)[0] == "IgnoreUnknown" for pair in pairs):
        pairs.insert(0, "IgnoreUnknown=1")
    env["CNI_ARGS"] = ";".join(pairs)
    if overrides:
        env.update(overrides)
    return env


def execute(binary: str, stdin: bytes, env: Mapping[str, str], deadline: float) -> PluginRun:
    """Run the plugin in a session of its own; past ``deadline`` (monotonic) its whole process
    group is killed and the run fails with "try again"."""
    import subprocess  # only when a delegate runs: off the built-in backend's start-up path

    started = time.monotonic()
    process = subprocess.Popen(
        [binary],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=dict(env),
        start_new_session=True,
        close_fds=True,
    )
    try:
        stdout, stderr = process.communicate(stdin, timeout=min(max(0.001, deadline - started), 86400.0))
    except subprocess.TimeoutExpired:
        _kill_group(process)
        raise CniFailure(
            ERR_TRY_AGAIN,
            f"CNI plugin {os.path.basename(binary)} did not finish within its deadline "
            f"({deadline - started:.1f} s); its process group was killed",
        ) from None
    except BaseException:
        _kill_group(process)
        raise
    finally:
        _reap_group(process.pid)
    return PluginRun(process.returncode, stdout, stderr, time.monotonic() - started)


def _kill_group(process: subprocess.Popen[bytes]) -> None:
    import signal
    import subprocess

    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    try:
        process.communicate(timeout=_KILL_GRACE)
    except subprocess.TimeoutExpired:
        pass


def _reap_group(pgid: int) -> None:
    """Children the plugin left behind in its process group (daemonised IPAM helpers, a shell
    script's background jobs) do not outlive it."""
    import signal

    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def failure_of(run: PluginRun, plugin: str, where: str) -> CniFailure:
    """The plugin's CNI error (or its exit status and stderr) as a danm error naming both."""
    import msgspec

    from danm.types import CniErrorReply

    try:
        reply = msgspec.json.decode(run.stdout, type=CniErrorReply)
        cause = f"{reply.msg} (CNI error {reply.code})"
        details = reply.details
    except (msgspec.DecodeError, ValueError):
        tail = run.stderr.decode(errors="replace").strip()[-500:]
        cause = f"exit status {run.returncode}" + (f": {tail}" if tail else "")
        details = ""
    prefix = f"{where}: " if where else ""
    return CniFailure(ERR_DELEGATE, f"{prefix}CNI plugin {plugin} failed: {cause}", details)


def parse_result(run: PluginRun, plugin: str, where: str) -> Result:
    from danm import cniresult

    try:
        return cniresult.parse_result(run.stdout)
    except cniresult.ResultDecodeError as error:
        prefix = f"{where}: " if where else ""
        raise CniFailure(ERR_DELEGATE, f"{prefix}CNI plugin {plugin} answered no valid result: {error}") from None


# --------------------------------------------------------------------------------------------
# Versions


def _cache_path(cache_dir: str, binary: str) -> str:
    import hashlib

    return os.path.join(cache_dir, hashlib.sha256(os.path.realpath(binary).encode()).hexdigest()[:32])


def _fingerprint(binary: str) -> str:
    status = os.stat(binary)
    return f"{os.path.realpath(binary)} {status.st_size} {status.st_mtime_ns}"


def supported_versions(binary: str, env: Mapping[str, str], cache_dir: str, deadline: float) -> list[str]:
    """The versions the plugin says it supports (its VERSION answer), cached per binary."""
    fingerprint = _fingerprint(binary)
    path = _cache_path(cache_dir, binary)
    try:
        with open(path, encoding="utf-8") as cached:
            lines = cached.read().splitlines()
        if len(lines) == 2 and lines[0] == fingerprint:
            return lines[1].split()
    except OSError:
        pass
    try:
        versions = _ask_versions(binary, env, deadline)
    except _NoVersion as legacy:
        return [str(legacy)]
    try:
        os.makedirs(cache_dir, mode=0o700, exist_ok=True)
        import threading

        # one temporary name per thread: the interfaces of one ADD ask concurrently
        temporary = f"{path}.{os.getpid()}.{threading.get_ident()}.tmp"
        with open(temporary, "w", encoding="utf-8") as fresh:
            fresh.write(f"{fingerprint}\n{' '.join(versions)}\n")
        os.replace(temporary, path)
    except OSError:
        pass  # a cache that cannot be written costs one VERSION call per invocation
    return versions


def _ask_versions(binary: str, env: Mapping[str, str], deadline: float) -> list[str]:
    import msgspec

    from danm.types import VersionReply

    version_env = dict(env)
    version_env["CNI_COMMAND"] = "VERSION"
    run = execute(binary, b'{"cniVersion":"0.1.0"}', version_env, deadline)
    if run.returncode != 0:
        raise _NoVersion(LEGACY_VERSION)
    try:
        return msgspec.json.decode(run.stdout, type=VersionReply).supported_versions
    except (msgspec.DecodeError, ValueError):
        raise _NoVersion(LEGACY_VERSION) from None


class _NoVersion(Exception):
    """A plugin gave no VERSION answer: 0.1.0 is assumed, but not cached (it may be transient)."""


def best_version(supported: list[str], ceiling: str = "") -> str:
    """The highest version both sides read, at most ``ceiling`` when given; "" when there is
    none."""
    limit = READABLE_VERSIONS.index(ceiling) if ceiling in READABLE_VERSIONS else len(READABLE_VERSIONS) - 1
    for version in reversed(READABLE_VERSIONS[: limit + 1]):
        if version in supported:
            return version
    return ""
