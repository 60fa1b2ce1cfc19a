from __future__ import annotations

import copy

from vibeplane.kube.client import APPLIED_ANNOTATION, contains, matches, stamped


def test_contains_ignores_fields_the_server_adds() -> None:
    live = {
        "metadata": {"name": "n", "uid": "u", "labels": {"a": "1", "b": "2"}},
        "spec": {"hard": {"cpu": "1"}, "x": [1, 2]},
    }
    assert contains(live, {"metadata": {"name": "n", "labels": {"a": "1"}}})
    assert contains(live, {"spec": {"hard": {"cpu": "1000m"}}})
    assert not contains(live, {"spec": {"x": [1]}})
    assert not contains(live, {"metadata": {"labels": {"c": "3"}}})


DEPLOYMENT = {
    "apiVersion": "apps/v1",
    "kind": "Deployment",
    "metadata": {"name": "web", "namespace": "ns"},
    "spec": {
        "replicas": 1,
        "template": {"spec": {"containers": [{"name": "app", "image": "i", "env": []}]}},
    },
}


def _as_stored(desired: dict) -> dict:  # type: ignore[type-arg]
    """What the API server keeps after applying `desired`: its defaults added."""
    stored = copy.deepcopy(stamped(desired))
    stored["metadata"]["uid"] = "u"
    stored["spec"]["progressDeadlineSeconds"] = 600
    container = stored["spec"]["template"]["spec"]["containers"][0]
    container["imagePullPolicy"] = "IfNotPresent"
    stored["spec"]["template"]["spec"]["dnsPolicy"] = "ClusterFirst"
    return stored


def test_a_converged_object_with_server_defaults_matches() -> None:
    assert matches(_as_stored(DEPLOYMENT), DEPLOYMENT)


def test_a_field_dropped_from_desired_is_a_change() -> None:
    live = _as_stored(DEPLOYMENT)
    dropped = copy.deepcopy(DEPLOYMENT)
    del dropped["spec"]["replicas"]  # still in live, but no longer ours: apply to remove it
    assert not matches(live, dropped)


def test_a_field_changed_by_someone_else_is_a_change() -> None:
    live = _as_stored(DEPLOYMENT)
    live["spec"]["replicas"] = 3
    assert not matches(live, DEPLOYMENT)


def test_an_object_applied_before_digests_is_a_change() -> None:
    live = _as_stored(DEPLOYMENT)
    del live["metadata"]["annotations"][APPLIED_ANNOTATION]
    assert not matches(live, DEPLOYMENT)


def test_the_digest_does_not_depend_on_key_order() -> None:
    reordered = dict(reversed(list(DEPLOYMENT.items())))
    annotation = stamped(DEPLOYMENT)["metadata"]["annotations"][APPLIED_ANNOTATION]
    assert stamped(reordered)["metadata"]["annotations"][APPLIED_ANNOTATION] == annotation
    assert "annotations" not in DEPLOYMENT["metadata"]  # the caller's object is left alone
