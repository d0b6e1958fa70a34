"""Kubernetes Events danm posts about pods (best effort: an Event is never worth a failure)."""

from __future__ import annotations

import datetime
from typing import TYPE_CHECKING, Final

from danm import kube
from danm.types import Event, EventSource, ObjectMeta, ObjectReference

if TYPE_CHECKING:
    from danm.cnilog import CniLog
    from danm.types import Pod

COMPONENT: Final = "danm"
EVENT_SECONDS: Final = 5.0
MAX_MESSAGE: Final = 1024  # the API server truncates longer messages anyway


def warning_event(pod: Pod, reason: str, message: str, node: str, now: datetime.datetime) -> Event:
    stamp = now.astimezone(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    return Event(
        metadata=ObjectMeta(generate_name=f"{pod.metadata.name}.", namespace=pod.metadata.namespace),
        involved_object=ObjectReference(
            api_version="v1",
            kind="Pod",
            namespace=pod.metadata.namespace,
            name=pod.metadata.name,
            uid=pod.metadata.uid,
        ),
        reason=reason,
        message=message[:MAX_MESSAGE],
        source=EventSource(component=COMPONENT, host=node),
        first_timestamp=stamp,
        last_timestamp=stamp,
        count=1,
        type="Warning",
        reporting_component=COMPONENT,
        reporting_instance=node,
    )


def warn_pod(client: kube.ApiClient, pod: Pod, reason: str, message: str, node: str, log: CniLog) -> None:
    import time

    event = warning_event(pod, reason, message, node, datetime.datetime.now(datetime.timezone.utc))
    try:
        client.create(kube.EVENTS, event, deadline=time.monotonic() + EVENT_SECONDS)
    except Exception as error:
        log.warning("event.failed", str(error), reason=reason)
