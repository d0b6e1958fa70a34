"""CNI CHECK (are the sandbox's interfaces as recorded?) and STATUS (can danm work here?)."""

from __future__ import annotations

import os
import time
from typing import TYPE_CHECKING, Final

from danm import endpoints, kube, netlink, nodestate
from danm.cni import ERR_LINK, ERR_NOT_READY, ERR_UNKNOWN_CONTAINER, CniFailure

if TYPE_CHECKING:
    from danm.invocation import Invocation
    from danm.types import DanmEp, Network

MAIN_TABLE: Final = 254
STATUS_SECONDS: Final = 5.0


def differences(endpoint: DanmEp, network: Network | None, observed: netlink.ObservedLink | None) -> list[str]:
    """What the kernel shows differently from the DanmEp (and its network's routes)."""
    interface = endpoint.spec.interface
    name = interface.name
    if observed is None:
        from danm import delegconf

        if delegconf.backend(endpoint.spec.network_type) != "builtin":
            return []  # delegates may serve user-space interfaces; ADD accepted them linkless
        return [f"interface {name} does not exist"]
    problems = []
    if not observed.up:
        problems.append(f"interface {name} is down")
    addresses = [address for address in (interface.address, interface.address_ipv6) if "/" in address]
    for address in addresses:
        if address not in observed.addresses:
            problems.append(f"interface {name} lacks address {address}")
    if network is None:
        return problems
    options = network.spec.options
    wanted: list[tuple[int, str, str]] = []
    rules: list[tuple[int, str, int]] = []
    families = (
        (interface.address, options.routes, interface.proutes, 32),
        (interface.address_ipv6, options.routes6, interface.proutes6, 128),
    )
    for address, routes, proutes, host_bits in families:
        if "/" not in address:
            continue
        wanted += [(MAIN_TABLE, destination, gateway) for destination, gateway in _usable(routes)]
        if options.rt_tables and proutes:
            table = options.rt_tables
            rules.append((netlink.rule_priority(table), f"{address.split('/', 1)[0]}/{host_bits}", table))
            wanted += [(table, destination, gateway) for destination, gateway in _usable(proutes)]
    for table, destination, gateway in wanted:
        if (table, _normal(destination), gateway) not in {(t, _normal(d), g) for t, d, g in observed.routes}:
            problems.append(f"interface {name} lacks route {destination} via {gateway} in table {table}")
    for rule in rules:
        if rule not in observed.rules:
            problems.append(f"policy rule from {rule[1]} lookup {rule[2]} priority {rule[0]} is missing")
    return problems


def _usable(routes: dict[str, str] | None) -> list[tuple[str, str]]:
    """The route entries ADD installs: those whose destination and gateway parse (it skips the
    others with a warning)."""
    import ipaddress

    usable = []
    for destination, gateway in (routes or {}).items():
        try:
            ipaddress.ip_network(destination, strict=False)
            ipaddress.ip_address(gateway)
        except ValueError:
            continue
        usable.append((destination, gateway))
    return usable


def _normal(destination: str) -> str:
    """Route destinations compared as networks (0.0.0.0/0 and default-style spellings)."""
    import ipaddress

    try:
        return str(ipaddress.ip_network(destination, strict=False))
    except ValueError:
        return destination


def check(invocation: Invocation) -> None:
    args = invocation.pod_args(require_pod=False)
    client = invocation.client()
    deadline = invocation.deadline()
    found = endpoints.of_container(client, args.infra_container_id, args.namespace, deadline)
    if not found:
        raise CniFailure(ERR_UNKNOWN_CONTAINER, f"no DanmEp records container {args.infra_container_id}")
    problems: list[str] = []
    for endpoint in found:
        kind, namespace, name = endpoints.network_ref(endpoint)
        network = endpoints.get_network(client, kind, namespace, name, deadline)
        netns = endpoints.text(endpoint.spec.netns) or invocation.env.netns
        observed = netlink.inspect(netns, endpoint.spec.interface.name)
        problems += differences(endpoint, network, observed)
    if problems:
        raise CniFailure(ERR_LINK, "CHECK found differences: " + "; ".join(problems))


# --------------------------------------------------------------------------------------------
# STATUS


def credentials_problem(config: kube.ClusterConfig, now: float) -> str:
    """Why the configured credentials cannot work any more ("" when they look fine)."""
    token = config.token
    if not token and config.token_file:
        try:
            with open(config.token_file, encoding="utf-8") as source:
                token = source.read().strip()
        except OSError as error:
            return f"token file {config.token_file}: {error.strerror}"
    if token.count(".") == 2:
        expiry = kube.token_expiry(token)
        if expiry and expiry <= now:
            return "the bearer token has expired"
    certificate = config.cert_data
    if not certificate and config.cert_file:
        try:
            with open(config.cert_file, "rb") as source:
                certificate = source.read()
        except OSError as error:
            return f"client certificate {config.cert_file}: {error.strerror}"
    if certificate:
        from cryptography import x509

        try:
            not_after = x509.load_pem_x509_certificate(certificate).not_valid_after_utc.timestamp()
        except ValueError as unparsable:  # one name per exception type: mypyc types it
            return f"client certificate: {unparsable}"
        if not_after <= now:
            return "the client certificate has expired"
    return ""


def status(invocation: Invocation) -> bytes:
    conf = invocation.conf
    cache = os.path.join(conf.run_dir, "status.json")
    now = time.time()
    cached = nodestate.cached_status(cache, conf.status_cache_seconds, now) if conf.status_cache_seconds else None
    if cached is None:
        ready, reason = probe(invocation, now)
        if conf.status_cache_seconds:
            try:
                nodestate.store_status(cache, ready, reason, now)
            except OSError as error:
                invocation.log.warning("status.cache-failed", str(error))
    else:
        ready, reason = cached
    if not ready:
        raise CniFailure(ERR_NOT_READY, f"danm is not ready: {reason}")
    return b""


def probe(invocation: Invocation, now: float) -> tuple[bool, str]:
    """Local prerequisites, then one round trip to the API server."""
    conf = invocation.conf
    if conf.kubeconfig and not os.access(conf.kubeconfig, os.R_OK):
        return False, f"kubeconfig {conf.kubeconfig} is not readable"
    try:
        config = kube.load_config(conf.kubeconfig or None, environ=invocation.environ)
    except kube.ConfigError as error:
        return False, f"kubeconfig: {error}"
    problem = credentials_problem(config, now)
    if problem:
        return False, problem
    try:
        invocation.client().request("GET", "/version", deadline=time.monotonic() + STATUS_SECONDS)
    except kube.ApiError as refusal:  # one name per exception type: mypyc types it
        return False, f"the API server answered {refusal}"
    except (kube.KubeError, OSError) as failure:
        return False, f"the API server is unreachable: {failure}"
    return True, ""
