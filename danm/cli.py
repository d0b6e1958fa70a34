"""The human-facing command line of the `danm` binary (typer).

Stays interpreted: a mypyc-compiled typer command loses its Annotated options and its help.
The CNI and fakeipam roles never come through here when a runtime execs them (see danm.entry).
"""

from pathlib import Path
from typing import Annotated, NoReturn

import typer

from danm import buildinfo

app = typer.Typer(
    name="danm",
    help="danm: Kubernetes network management for telco workloads. One binary, one role per command.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
ipam_app = typer.Typer(
    help="Inspect IP allocations of danm networks.", no_args_is_help=True, add_completion=False
)
app.add_typer(ipam_app, name="ipam")


# Every command that talks to the API takes --kubeconfig; without it danm.kube.load_config uses
# $KUBECONFIG, then ~/.kube/config, then the in-cluster service account.
KubeconfigOption = Annotated[
    Path | None,
    typer.Option(help="kubeconfig to use; default: $KUBECONFIG, ~/.kube/config, then in-cluster."),
]


def not_implemented(role: str) -> NoReturn:
    typer.echo(f"danm {role}: not implemented yet", err=True)
    raise typer.Exit(code=1)


@app.command(help="The CNI meta-plugin (runtimes exec `danm` with CNI_COMMAND set and no arguments).")
def cni() -> None:
    from danm import cni as cni_role

    raise typer.Exit(code=cni_role.main())


@app.command(help="The IPAM plugin that hands danm's addresses to delegates (also: run as `fakeipam`).")
def fakeipam() -> None:
    from danm import fakeipam as fakeipam_role

    raise typer.Exit(code=fakeipam_role.main())


@app.command(help="Node daemon: creates and removes VLAN/VxLAN host interfaces for networks.")
def netwatcher(kubeconfig: KubeconfigOption = None) -> None:
    not_implemented("netwatcher")


@app.command(help="Leader-elected controller: endpoints of annotated Services from pod interfaces.")
def svcwatcher(kubeconfig: KubeconfigOption = None) -> None:
    not_implemented("svcwatcher")


@app.command(help="Validating and mutating admission webhook for the danm APIs.")
def webhook(kubeconfig: KubeconfigOption = None) -> None:
    not_implemented("webhook")


@app.command(help="Embedded in-memory Kubernetes API server, for trials and tests.")
def apiserver(
    listen: Annotated[str, typer.Option(help="HOST:PORT to listen on; port 0 picks a free port.")] = "127.0.0.1:0",
    kubeconfig_out: Annotated[
        Path | None, typer.Option(help="Write a kubeconfig for kubectl, the official client and danm here.")
    ] = None,
    token: Annotated[str, typer.Option(help="Require this bearer token (401 otherwise): the admin credential.")] = "",
    crds: Annotated[Path | None, typer.Option(help="Apply the CRD manifests of this directory at start-up.")] = None,
    tls: Annotated[bool, typer.Option(help="Serve HTTPS with a self-signed certificate.")] = False,
    rbac: Annotated[bool, typer.Option(help="Authorize ServiceAccount tokens with RBAC objects.")] = False,
    watch_history: Annotated[
        int, typer.Option(help="Changes kept for watches; older resourceVersions get 410 Expired.")
    ] = 100_000,
) -> None:
    import ipaddress
    import signal
    import threading

    from danm.apiserver import ApiServer, load_crds

    host, _, port_text = listen.rpartition(":")
    host = host.strip("[]") or "127.0.0.1"
    try:
        port = int(port_text)
        loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        typer.echo(f"danm apiserver: --listen {listen!r} is not HOST:PORT", err=True)
        raise typer.Exit(code=2) from None
    if not loopback and not (tls and token):
        typer.echo("danm apiserver: a non-loopback address needs both --tls and --token", err=True)
        raise typer.Exit(code=2)
    server = ApiServer(host, port, token=token, history=watch_history, rbac=rbac, tls=tls)
    if crds is not None:
        load_crds(server, str(crds))
    if kubeconfig_out is not None:
        kubeconfig_out.write_text(server.kubeconfig(), encoding="utf-8")
        kubeconfig_out.chmod(0o600)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    server.start()
    typer.echo(server.url)
    stop.wait()
    server.stop()


@app.command(help="Run a self-contained demonstration against the embedded API server.")
def demo() -> None:
    not_implemented("demo")


KINDS = {"danmnet": "DanmNet", "tenantnetwork": "TenantNetwork", "clusternetwork": "ClusterNetwork"}


@ipam_app.command("show", help="Show a network's pools, used and free counts per family, and lastIp.")
def ipam_show(
    network: Annotated[str, typer.Argument(help="Name of the network object.")],
    namespace: Annotated[str, typer.Option(help="Namespace of a DanmNet or TenantNetwork.")] = "default",
    kind: Annotated[str, typer.Option(help="danmnet, tenantnetwork or clusternetwork.")] = "danmnet",
    json_output: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
    kubeconfig: KubeconfigOption = None,
) -> None:
    import json

    from danm import ipam, kube
    from danm.types import Network

    if kind.lower() not in KINDS:
        typer.echo(f"danm ipam show: --kind must be one of {', '.join(KINDS)}", err=True)
        raise typer.Exit(code=2)
    resource = kube.network_resource(KINDS[kind.lower()])
    with kube.ApiClient(kube.load_config(str(kubeconfig) if kubeconfig else None)) as client:
        net = client.get(resource, namespace if resource.namespaced else "", network, Network)
    usage = ipam.usage(net)
    if json_output:
        typer.echo(json.dumps(usage))
        return
    typer.echo(f"{resource.kind} {network}" + (f" in {namespace}" if resource.namespaced else ""))
    for family in ("ipv4", "ipv6"):
        shown = usage[family]
        if shown is None:
            typer.echo(f"  {family}: not configured")
            continue
        typer.echo(
            f"  {family}: cidr {shown['cidr']}  pool {shown['poolStart']} - {shown['poolEnd']}  "
            f"used {shown['used']}  free {shown['free']}  lastIp {shown['lastIp'] or '-'}"
        )


@ipam_app.command("check", help="Cross-check every network's bitmaps against the DanmEps (exit 1 on findings).")
def ipam_check(
    grace: Annotated[
        float, typer.Option(help="Seconds between the two passes: only findings seen in both count.")
    ] = 2.0,
    kubeconfig: KubeconfigOption = None,
) -> None:
    import time

    from danm import ipam, kube
    from danm.types import DanmEp, Network

    def findings(client: kube.ApiClient) -> dict[tuple[str, str, str, str, str], ipam.Finding]:
        networks: list[Network] = []
        for resource in (kube.DANMNETS, kube.TENANTNETWORKS, kube.CLUSTERNETWORKS):
            items, _ = client.list(resource, "", Network)
            networks.extend(items)
        endpoints, _ = client.list(kube.DANMEPS, "", DanmEp)
        return {finding.key(): finding for finding in ipam.audit(networks, endpoints)}

    with kube.ApiClient(kube.load_config(str(kubeconfig) if kubeconfig else None)) as client:
        first = findings(client)
        if first and grace > 0:
            # a reservation in flight sets its bit moments before its DanmEp is written
            time.sleep(grace)
        confirmed = [finding for key, finding in findings(client).items() if key in first]
    for finding in confirmed:
        typer.echo(str(finding))
    if confirmed:
        raise typer.Exit(code=1)
    typer.echo("no leaks or corruption found")


@app.command(help="Print the danm version, git commit, Python version and CNI spec versions.")
def version() -> None:
    for line in buildinfo.version_lines():
        typer.echo(line)


def run(args: list[str]) -> int:
    try:
        app(args=args, prog_name="danm")
    except SystemExit as stop:
        code = stop.code
        return code if isinstance(code, int) else (0 if code is None else 1)
    return 0
