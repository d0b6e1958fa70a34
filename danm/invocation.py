"""One CNI invocation after the protocol checks: its context, and the dispatch to the verbs.

``execute`` sets up what every verb shares (the log, the API client, the node-wide concurrency
slot, the deadline) and turns whatever a verb raises into the CNI error it means
(``cni.failure_from``), after logging it.
"""

from __future__ import annotations

import os
import socket
import time
from typing import TYPE_CHECKING, Final

from danm.cni import ERR_TRY_AGAIN, CniFailure, PodArgs, failure_from, parse_cni_args
from danm.cnilog import CniLog

if TYPE_CHECKING:
    from collections.abc import Mapping

    from danm import kube
    from danm.cni import CniEnv
    from danm.types import DanmNetConf

# Tests only: {"delayReserveMs": n, "delayLinkMs": n, "record": path} (see Hooks).
HOOKS_VARIABLE: Final = "DANM_TEST_HOOKS"
# Per API request attempt; every call also carries the invocation's deadline.
REQUEST_TIMEOUT: Final = 10.0


class Hooks:
    """Test hooks: delays before each reservation and each link creation, and a record of when
    each delayed step ran, so that tests can prove the interfaces are built concurrently."""

    def __init__(self, delay_reserve: float = 0.0, delay_link: float = 0.0, record: str = "") -> None:
        self.delay_reserve = delay_reserve
        self.delay_link = delay_link
        self.record = record

    @staticmethod
    def from_environment(environ: Mapping[str, str]) -> Hooks:
        text = environ.get(HOOKS_VARIABLE, "")
        if not text:
            return Hooks()
        import json

        settings = json.loads(text)
        return Hooks(
            float(settings.get("delayReserveMs", 0)) / 1000.0,
            float(settings.get("delayLinkMs", 0)) / 1000.0,
            str(settings.get("record", "")),
        )

    def delay(self, step: str, seconds: float, network: str) -> None:
        if seconds <= 0:
            return
        began = time.time()
        time.sleep(seconds)
        if self.record:
            with open(self.record, "a", encoding="utf-8") as record:
                record.write(f"{step} {network} {began:.6f} {time.time():.6f}\n")


class Invocation:
    """What the verbs share: environment, config, result version, log, client, deadline."""

    def __init__(
        self, env: CniEnv, conf: DanmNetConf, version: str, environ: Mapping[str, str], log: CniLog
    ) -> None:
        self.env = env
        self.conf = conf
        self.version = version
        self.environ = environ
        self.log = log
        self.started = time.monotonic()
        self.hooks = Hooks.from_environment(environ)
        self._client: kube.ApiClient | None = None
        self._pod_args: PodArgs | None = None

    @property
    def attachments_dir(self) -> str:
        """ADD's node-local notes of each sandbox's DanmEps (read by a DEL without the API)."""
        return os.path.join(self.conf.run_dir, "attachments")

    @property
    def failures_dir(self) -> str:
        """When each container's DEL first failed (bounds the retries)."""
        return os.path.join(self.conf.state_dir, "del-failures")

    @property
    def tombstones_dir(self) -> str:
        """What DELs that gave up left holding addresses."""
        return os.path.join(self.conf.state_dir, "tombstones")

    def deadline(self) -> float:
        """The deadline of the invocation's API work and of each interface."""
        return self.started + self.conf.interface_deadline

    def pod_args(self, require_pod: bool, strict: bool = True) -> PodArgs:
        if self._pod_args is None:
            self._pod_args = parse_cni_args(self.env.args, self.env.container_id, require_pod, strict)
        return self._pod_args

    def client(self) -> kube.ApiClient:
        if self._client is None:
            from danm import kube

            config = kube.load_config(self.conf.kubeconfig or None, environ=self.environ)
            self._client = kube.ApiClient(config, REQUEST_TIMEOUT, retries=2, backoff=0.1, max_backoff=1.0)
        return self._client

    def node_name(self) -> str:
        """Where no pod is at hand: the config's nodeName, then $NODE_NAME, then the hostname."""
        return self.conf.node_name or self.environ.get("NODE_NAME", "") or socket.gethostname()

    def close(self) -> None:
        if self._client is not None:
            self._client.close()


def execute(env: CniEnv, conf: DanmNetConf, version: str, environ: Mapping[str, str], stdin: bytes) -> bytes:
    """Run one verb; raises CniFailure (already logged) when it fails."""
    log = CniLog(conf.log_file, conf.log_max_bytes, conf.log_backups, level=conf.log_level)
    log.set_context(command=env.command, container=env.container_id, netns=env.netns)
    invocation = Invocation(env, conf, version, environ, log)
    try:
        if env.command == "STATUS":
            from danm import verify

            return verify.status(invocation)
        from danm.nodestate import NodeSlot, SlotTimeout

        try:
            slot = NodeSlot(os.path.join(conf.run_dir, "slots"), conf.max_concurrent, invocation.deadline())
            slot.__enter__()
        except SlotTimeout as busy:
            raise CniFailure(ERR_TRY_AGAIN, str(busy)) from None
        try:
            output = _dispatch(invocation, stdin)
        finally:
            slot.__exit__(None, None, None)
        log.info("done", elapsed_ms=round((time.monotonic() - invocation.started) * 1000, 1))
        return output
    except Exception as error:
        failure = failure_from(error)
        log.error(
            "failed",
            failure.msg,
            code=failure.code,
            details=failure.details,
            elapsed_ms=round((time.monotonic() - invocation.started) * 1000, 1),
        )
        raise failure from None
    finally:
        invocation.close()
        log.close()


def _dispatch(invocation: Invocation, stdin: bytes) -> bytes:
    command = invocation.env.command
    if command == "ADD":
        from danm import attach

        return attach.add(invocation)
    if command == "DEL":
        from danm import detach

        detach.delete(invocation)
        return b""
    if command == "GC":
        from danm import detach

        detach.gc(invocation)
        return b""
    from danm import verify

    verify.check(invocation)
    return b""
