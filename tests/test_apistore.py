"""The API server's object store: resourceVersions, CAS updates, finalizers, lists, watches."""

import threading
from typing import Any

import pytest

from danm.apistore import (
    DELETED,
    ListQuery,
    Resource,
    StatusError,
    Store,
    parse_field_selector,
    validate_metadata,
    watch_event_type,
)
from danm.labels import parse_selector

CONFIGMAPS = Resource("", "v1", "ConfigMap", "configmaps", True, unconditional_update=True)
DANMNETS = Resource("danm.io", "v1", "DanmNet", "danmnets", True, generation=True)
CLUSTERNETS = Resource("danm.io", "v1", "ClusterNetwork", "clusternetworks", False, generation=True)


def cm(name: str, namespace: str = "default", **labels: str) -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": namespace, "labels": labels}, "data": {"k": "v"}}


def put(expected_version: str, body: dict[str, Any]) -> Any:
    """A PUT's change function: refuse a stale resourceVersion with 409, as the server does."""

    def change(current: dict[str, Any]) -> dict[str, Any]:
        if current["metadata"]["resourceVersion"] != expected_version:
            raise StatusError(409, "Conflict", "the object has been modified")
        return body

    return change


def test_create_fills_server_metadata_from_one_counter() -> None:
    store = Store()
    first = store.create(CONFIGMAPS, cm("a"))
    second = store.create(DANMNETS, {"metadata": {"name": "n", "namespace": "default"}, "spec": {}})
    assert int(second["metadata"]["resourceVersion"]) == int(first["metadata"]["resourceVersion"]) + 1
    assert first["kind"] == "ConfigMap" and first["apiVersion"] == "v1"
    assert second["apiVersion"] == "danm.io/v1" and second["metadata"]["generation"] == 1
    assert "generation" not in first["metadata"]
    assert len(first["metadata"]["uid"]) == 36 and first["metadata"]["creationTimestamp"].endswith("Z")


def test_create_conflicts_and_requires_a_name() -> None:
    store = Store()
    store.create(CONFIGMAPS, cm("a"))
    with pytest.raises(StatusError) as raised:
        store.create(CONFIGMAPS, cm("a"))
    assert (raised.value.code, raised.value.reason) == (409, "AlreadyExists")
    assert raised.value.message == 'configmaps "a" already exists'
    with pytest.raises(StatusError) as raised:
        store.create(CONFIGMAPS, {"metadata": {"namespace": "default"}})
    assert raised.value.code == 422
    assert "metadata.name: Required value: name or generateName is required" in raised.value.message
    with pytest.raises(StatusError) as raised:
        store.create(CONFIGMAPS, {"metadata": {"name": "b", "resourceVersion": "5"}})
    assert raised.value.code == 500


def test_generate_name() -> None:
    store = Store()
    made = store.create(CONFIGMAPS, {"metadata": {"generateName": "web-", "namespace": "default"}})
    name = made["metadata"]["name"]
    assert name.startswith("web-") and len(name) == len("web-") + 5


def test_update_is_compare_and_swap() -> None:
    store = Store()
    created = store.create(CONFIGMAPS, cm("a"))
    version = created["metadata"]["resourceVersion"]
    changed = dict(created, data={"k": "w"})
    stored, written = store.update(CONFIGMAPS, "default", "a", put(version, changed))
    assert written and stored["metadata"]["resourceVersion"] != version
    with pytest.raises(StatusError) as raised:
        store.update(CONFIGMAPS, "default", "a", put(version, changed))
    assert raised.value.code == 409


def test_no_op_update_keeps_the_version_and_sends_no_event() -> None:
    store = Store()
    created = store.create(CONFIGMAPS, cm("a"))
    before = store.revision
    stored, written = store.update(CONFIGMAPS, "default", "a", lambda current: dict(current))
    assert not written and stored is created and store.revision == before


def test_update_keeps_server_owned_metadata() -> None:
    store = Store()
    created = store.create(DANMNETS, {"metadata": {"name": "n", "namespace": "default"}, "spec": {"a": 1}})
    forged = {"metadata": {"name": "n", "uid": "forged", "creationTimestamp": "1999-01-01T00:00:00Z", "generation": 40}, "spec": {"a": 2}}
    stored, _ = store.update(DANMNETS, "default", "n", lambda current: forged)
    assert stored["metadata"]["uid"] == created["metadata"]["uid"]
    assert stored["metadata"]["creationTimestamp"] == created["metadata"]["creationTimestamp"]
    assert stored["metadata"]["generation"] == 2  # spec changed: bumped from the stored 1
    relabelled = dict(stored, metadata=dict(stored["metadata"], labels={"x": "y"}))
    again, _ = store.update(DANMNETS, "default", "n", lambda current: relabelled)
    assert again["metadata"]["generation"] == 2  # metadata-only change: no bump


def test_delete_and_preconditions() -> None:
    store = Store()
    created = store.create(CONFIGMAPS, cm("a"))
    with pytest.raises(StatusError) as raised:
        store.delete(CONFIGMAPS, "default", "a", precondition_version="999")
    assert raised.value.code == 409 and "does not match the ResourceVersion in record" in raised.value.message
    gone, deleted = store.delete(CONFIGMAPS, "default", "a", precondition_uid=created["metadata"]["uid"])
    assert deleted and int(gone["metadata"]["resourceVersion"]) > int(created["metadata"]["resourceVersion"])
    with pytest.raises(StatusError) as raised:
        store.get(CONFIGMAPS, "default", "a")
    assert raised.value.code == 404 and raised.value.details == {"name": "a", "kind": "configmaps"}


def test_finalizers_hold_deletion_until_removed() -> None:
    store = Store()
    store.create(CLUSTERNETS, {"metadata": {"name": "n", "finalizers": ["danm.io/protect"]}, "spec": {}})
    marked, deleted = store.delete(CLUSTERNETS, "", "n")
    assert not deleted and marked["metadata"]["deletionTimestamp"]
    assert marked["metadata"]["deletionGracePeriodSeconds"] == 0
    again, deleted = store.delete(CLUSTERNETS, "", "n")
    assert not deleted and again is marked
    adding = dict(marked, metadata=dict(marked["metadata"], finalizers=["danm.io/protect", "other"]))
    with pytest.raises(StatusError) as raised:
        store.update(CLUSTERNETS, "", "n", lambda current: adding)
    assert raised.value.code == 422 and "no new finalizers can be added" in raised.value.message
    released = dict(marked, metadata=dict(marked["metadata"], finalizers=[]))
    _, written = store.update(CLUSTERNETS, "", "n", lambda current: released)
    assert written and store.find(CLUSTERNETS, "", "n") is None
    assert store.history[-1].kind == DELETED


def test_list_selectors_and_key_order() -> None:
    store = Store()
    for name, ns, app in [("b", "default", "web"), ("a", "default", "db"), ("c", "other", "web")]:
        store.create(CONFIGMAPS, cm(name, ns, app=app))
    items, version, token = store.list_objects(CONFIGMAPS, ListQuery())
    assert [i["metadata"]["name"] for i in items] == ["a", "b", "c"] and token == ""
    assert version == str(store.revision)
    web = store.list_objects(CONFIGMAPS, ListQuery(labels=parse_selector("app=web")))[0]
    assert [i["metadata"]["name"] for i in web] == ["b", "c"]
    in_default = store.list_objects(CONFIGMAPS, ListQuery(namespace="default"))[0]
    assert [i["metadata"]["name"] for i in in_default] == ["a", "b"]
    fields = parse_field_selector("metadata.name!=a", CONFIGMAPS.field_labels)
    assert [i["metadata"]["name"] for i in store.list_objects(CONFIGMAPS, ListQuery(fields=fields))[0]] == ["b", "c"]


def test_paged_lists_are_one_snapshot() -> None:
    store = Store()
    for index in range(5):
        store.create(CONFIGMAPS, cm(f"cm{index}"))
    page, version, token = store.list_objects(CONFIGMAPS, ListQuery(), limit=2)
    assert [i["metadata"]["name"] for i in page] == ["cm0", "cm1"] and token
    store.create(CONFIGMAPS, cm("cm00"))  # written between pages: not in this list
    page2, version2, token2 = store.list_objects(CONFIGMAPS, ListQuery(), limit=2, continue_token=token)
    assert [i["metadata"]["name"] for i in page2] == ["cm2", "cm3"] and version2 == version
    page3, _, token3 = store.list_objects(CONFIGMAPS, ListQuery(), limit=2, continue_token=token2)
    assert [i["metadata"]["name"] for i in page3] == ["cm4"] and token3 == ""
    with pytest.raises(StatusError) as raised:
        store.list_objects(CONFIGMAPS, ListQuery(), continue_token=token)  # already consumed
    assert raised.value.code == 410
    with pytest.raises(StatusError) as raised:
        store.list_objects(CONFIGMAPS, ListQuery(), continue_token="garbage!")
    assert raised.value.code == 400


def test_field_selector_refuses_unknown_fields() -> None:
    with pytest.raises(StatusError) as raised:
        parse_field_selector("spec.nodeName=n1", CONFIGMAPS.field_labels)
    assert raised.value.code == 400 and raised.value.message == "field label not supported: spec.nodeName"


def test_watch_history_and_410() -> None:
    store = Store(history=3)
    start = store.revision
    for index in range(3):
        store.create(CONFIGMAPS, cm(f"c{index}"))
    events = store.events_since(start, timeout=0)
    assert [e.revision for e in events] == [start + 1, start + 2, start + 3]
    store.create(CONFIGMAPS, cm("c3"))  # pushes the first event out of the window
    with pytest.raises(StatusError) as raised:
        store.events_since(start, timeout=0)
    assert raised.value.code == 410 and raised.value.reason == "Expired"
    assert [e.revision for e in store.events_since(start + 1, timeout=0)] == [start + 2, start + 3, start + 4]


def test_watch_waits_for_the_next_change() -> None:
    store = Store()
    since = store.revision
    writer = threading.Timer(0.05, lambda: store.create(CONFIGMAPS, cm("late")))
    writer.start()
    events = store.events_since(since, timeout=5)
    writer.join()
    assert [e.new["metadata"]["name"] for e in events if e.new] == ["late"]
    assert store.events_since(store.revision, timeout=0.01) == []


def test_selector_changes_look_like_add_and_delete() -> None:
    store = Store()
    created = store.create(CONFIGMAPS, cm("a", app="db"))
    relabelled = dict(created, metadata=dict(created["metadata"], labels={"app": "web"}))
    store.update(CONFIGMAPS, "default", "a", lambda current: relabelled)
    web = ListQuery(labels=parse_selector("app=web"))
    db = ListQuery(labels=parse_selector("app=db"))
    added, modified = list(store.history)
    assert watch_event_type(added, web) == "" and watch_event_type(added, db) == "ADDED"
    assert watch_event_type(modified, web) == "ADDED" and watch_event_type(modified, db) == "DELETED"


@pytest.mark.parametrize(
    ("metadata", "field"),
    [
        ({"name": "Bad_Name"}, "metadata.name"),
        ({"name": "ok", "labels": {"k": "v" * 64}}, "metadata.labels"),
        ({"name": "ok", "labels": {"-k": "v"}}, "metadata.labels"),
        ({"name": "ok", "annotations": {"a": "x" * 262_145}}, "metadata.annotations"),
    ],
)
def test_metadata_validation(metadata: dict[str, Any], field: str) -> None:
    causes = validate_metadata(CONFIGMAPS, {"metadata": metadata})
    assert [cause["field"] for cause in causes] == [field]


def test_object_size_limit() -> None:
    store = Store()
    with pytest.raises(StatusError) as raised:
        store.create(CONFIGMAPS, dict(cm("big"), data={"k": "x" * 1_600_000}))
    assert raised.value.code == 413


def test_concurrent_increments_are_linearizable() -> None:
    store = Store()
    store.create(CONFIGMAPS, dict(cm("counter"), data={"n": "0"}))

    def increment(current: dict[str, Any]) -> dict[str, Any]:
        return dict(current, data={"n": str(int(current["data"]["n"]) + 1)})

    def worker() -> None:
        for _ in range(200):
            store.update(CONFIGMAPS, "default", "counter", increment)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert store.get(CONFIGMAPS, "default", "counter")["data"]["n"] == "1600"
    revisions = [event.revision for event in store.history]
    assert revisions == sorted(revisions) and len(set(revisions)) == len(revisions) == 1601
