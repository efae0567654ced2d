"""Reapplying the base (`kubectl apply -k`): the Job is named after what it runs, its settings
and its image, so a resize or a new image creates a new Job, an unchanged input is a no-op, and a
resize rolls no Redis pod. Exit codes a retry can't fix fail the Job at once."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
import yaml

from bootstrap.errors import ExitCode
from tests.integration.kustomize import BASE, by_kind, render

pytestmark = pytest.mark.integration

INIT_IMAGE = "redis-cluster-selfform-init"
MAX_LABEL_VALUE = 63
"""The Job's name is also its pods' `job-name` label value."""


@pytest.fixture(scope="module")
def base() -> list[dict[str, Any]]:
    return render()


def overlay(directory: Path, **kustomization: Any) -> list[dict[str, Any]]:
    """Render an overlay of the base, as a user's own kustomization would be."""
    directory.mkdir()
    text = yaml.safe_dump({"resources": [os.path.relpath(BASE, directory)], **kustomization})
    (directory / "kustomization.yaml").write_text(text)
    return render(directory)


def job_name(objects: list[dict[str, Any]]) -> str:
    name: str = by_kind(objects, "Job")["metadata"]["name"]
    return name


def pod_template(objects: list[dict[str, Any]]) -> dict[str, Any]:
    template: dict[str, Any] = by_kind(objects, "StatefulSet")["spec"]["template"]
    return template


def configmap(objects: list[dict[str, Any]], name: str) -> dict[str, str]:
    data: dict[str, str] = next(
        o["data"] for o in objects if o["kind"] == "ConfigMap" and o["metadata"]["name"] == name
    )
    return data


def loaded_configmaps(container: dict[str, Any]) -> list[str]:
    return [source["configMapRef"]["name"] for source in container["envFrom"]]


def test_the_job_is_named_after_its_own_settings(base: list[dict[str, Any]]) -> None:
    name = job_name(base)
    assert name.startswith("redis-bootstrap-") and len(name) <= MAX_LABEL_VALUE
    job = by_kind(base, "Job")["spec"]["template"]["spec"]["containers"][0]
    shared, own = loaded_configmaps(job)
    assert own == name and configmap(base, own)["CLUSTER_SIZE"] == "6"
    # Reruns from the template run what the Job runs.
    cron = by_kind(base, "CronJob")["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    assert loaded_configmaps(cron["containers"][0]) == [shared, own]
    # No pod loads the Job's settings: a resize must not roll them.
    pod = pod_template(base)["spec"]
    for container in pod["initContainers"] + pod["containers"]:
        assert loaded_configmaps(container) == [shared], container["name"]


def test_a_resize_creates_a_new_job_and_rolls_no_pod(
    base: list[dict[str, Any]], tmp_path: Path
) -> None:
    resized = overlay(
        tmp_path / "resized",
        replicas=[{"name": "redis", "count": 9}],
        configMapGenerator=[
            {"name": "redis-bootstrap", "behavior": "merge", "literals": ["CLUSTER_SIZE=9"]}
        ],
    )
    assert job_name(resized) != job_name(base)
    assert configmap(resized, job_name(resized))["CLUSTER_SIZE"] == "9"
    assert by_kind(resized, "StatefulSet")["spec"]["replicas"] == 9
    assert pod_template(resized) == pod_template(base)
    assert yaml.safe_dump(pod_template(resized)) == yaml.safe_dump(pod_template(base))


def test_an_unchanged_input_keeps_the_job_name(base: list[dict[str, Any]], tmp_path: Path) -> None:
    assert render() == base
    assert job_name(overlay(tmp_path / "as-is")) == job_name(base)


def test_a_new_init_image_creates_a_new_job(base: list[dict[str, Any]], tmp_path: Path) -> None:
    retagged = overlay(tmp_path / "tag", images=[{"name": INIT_IMAGE, "newTag": "0.2.0"}])
    renamed = {"name": INIT_IMAGE, "newName": f"team/{INIT_IMAGE}"}
    moved = overlay(tmp_path / "name", images=[renamed])
    names = {job_name(objects) for objects in (base, retagged, moved)}
    assert len(names) == 3
    for objects in (base, retagged, moved):
        image = by_kind(objects, "Job")["spec"]["template"]["spec"]["containers"][0]["image"]
        assert configmap(objects, job_name(objects))["BOOTSTRAP_IMAGE"] == image
        assert pod_template(objects) == pod_template(base)
    assert by_kind(retagged, "Job")["spec"]["template"]["spec"]["containers"][0]["image"] == (
        f"{INIT_IMAGE}:0.2.0"
    )


@pytest.mark.parametrize("kind", ["Job", "CronJob"])
def test_exit_codes_a_retry_cannot_fix_fail_the_job_at_once(
    base: list[dict[str, Any]], kind: str
) -> None:
    spec = by_kind(base, kind)["spec"]
    if kind == "CronJob":
        spec = spec["jobTemplate"]["spec"]
    assert spec["template"]["spec"]["restartPolicy"] == "Never"  # podFailurePolicy needs it
    fail, ignore = spec["podFailurePolicy"]["rules"]
    unfixable = [
        ExitCode.BAD_SETTINGS,
        ExitCode.REFUSED_UNSAFE,
        ExitCode.AUTH_FAILED,
        ExitCode.TLS_FAILED,
    ]
    assert fail["action"] == "FailJob"
    assert fail["onExitCodes"] == {
        "containerName": spec["template"]["spec"]["containers"][0]["name"],
        "operator": "In",
        "values": sorted(int(code) for code in unfixable),
    }
    # A node drain or a preemption is no failure of the Job's own.
    assert ignore == {
        "action": "Ignore",
        "onPodConditions": [{"type": "DisruptionTarget", "status": "True"}],
    }
    assert spec["backoffLimit"] > 0
