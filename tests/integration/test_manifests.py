"""The kustomize base, checked without a cluster: rendered, validated against Kubernetes 1.29-1.37,
Pod Security Standards "restricted", hadolint, a real redis-server on the shipped config, and the
products' own settings code on the manifests' settings."""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import redis

from bootstrap.settings import parse_job_settings
from clusterkit.core.redisconf import auth_include
from clusterkit.io.access import Access
from clusterkit.io.redisio import connect
from clusterkit.io.waiting import WaitTimeout, wait_until
from devcluster.servers import server_bin
from sidecar.settings import parse_sidecar_settings
from tests.integration.helpers import random_octet
from tests.integration.kustomize import (
    ROOT,
    TEST_MEMORY_LIMIT,
    by_kind,
    mounts_of,
    render,
    settings_env,
    tool,
)

pytestmark = [pytest.mark.integration, pytest.mark.needs_server]

VERSIONS = [f"1.{minor}.0" for minor in range(29, 38)]


@pytest.fixture(scope="module")
def objects() -> list[dict[str, Any]]:
    return render()


def pod_specs(objects: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    specs = {}
    for o in objects:
        if o["kind"] in ("StatefulSet", "Job"):
            specs[o["kind"]] = o["spec"]["template"]["spec"]
        elif o["kind"] == "CronJob":
            specs["CronJob"] = o["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    return specs


def test_every_object_is_valid_for_kubernetes_1_29_to_1_37(objects: list[dict[str, Any]]) -> None:
    kinds = sorted(o["kind"] for o in objects)
    assert kinds == sorted(
        [
            "ConfigMap",
            "ConfigMap",
            "ConfigMap",
            "CronJob",
            "Job",
            "NetworkPolicy",
            "NetworkPolicy",
            "PodDisruptionBudget",
            "Service",
            "Service",
            "ServiceAccount",
            "StatefulSet",
        ]
    )
    for version in VERSIONS:
        for obj in objects:
            kubernetes_validate.validate(obj, version, strict=True)  # raises on any error


def test_every_object_is_labelled_alike(objects: list[dict[str, Any]]) -> None:
    for obj in objects:
        labels = obj["metadata"].get("labels", {})
        assert labels.get("app.kubernetes.io/name") == "redis-cluster", obj["metadata"]["name"]


def test_pod_templates_meet_pod_security_restricted(objects: list[dict[str, Any]]) -> None:
    for kind, spec in pod_specs(objects).items():
        pod = spec.get("securityContext", {})
        assert spec.get("automountServiceAccountToken") is False, kind
        assert spec.get("hostNetwork") is not True and spec.get("hostPID") is not True, kind
        for container in spec.get("initContainers", []) + spec["containers"]:
            own = container.get("securityContext", {})
            where = f"{kind}/{container['name']}"
            assert own.get("allowPrivilegeEscalation") is False, where
            assert own.get("capabilities", {}).get("drop") == ["ALL"], where
            assert own.get("privileged") is not True, where
            non_root = own.get("runAsNonRoot", pod.get("runAsNonRoot"))
            user = own.get("runAsUser", pod.get("runAsUser"))
            assert non_root is True and isinstance(user, int) and user > 0, where
            seccomp = own.get("seccompProfile", pod.get("seccompProfile", {}))
            assert seccomp.get("type") == "RuntimeDefault", where


def test_statefulset_runs_redis_behind_a_native_sidecar(objects: list[dict[str, Any]]) -> None:
    sts = by_kind(objects, "StatefulSet")
    assert sts["spec"]["podManagementPolicy"] == "Parallel"
    spec = sts["spec"]["template"]["spec"]
    (sidecar,) = spec["initContainers"]
    assert sidecar["restartPolicy"] == "Always"
    assert sidecar["startupProbe"]["httpGet"]["path"] == "/startupz"
    redis_container = spec["containers"][0]
    assert redis_container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    live = redis_container["livenessProbe"]
    assert live["httpGet"]["path"] == "/livez"
    # A loading Redis is alive by /livez's own rule; the thresholds add a minute of slack.
    assert live["periodSeconds"] * live["failureThreshold"] >= 60
    headless = next(o for o in objects if o["kind"] == "Service" and o["spec"].get("clusterIP"))
    assert headless["spec"]["publishNotReadyAddresses"] is True
    assert sts["spec"]["serviceName"] == headless["metadata"]["name"]
    assert by_kind(objects, "CronJob")["spec"]["suspend"] is True


def test_settings_in_the_manifests_parse_with_the_products_code(
    objects: list[dict[str, Any]], tmp_path: Path
) -> None:
    job = by_kind(objects, "Job")["spec"]["template"]["spec"]["containers"][0]
    job_env = settings_env(objects, job)
    # The Secret's mount path from the manifests; parsing checks the file is readable. Each
    # program is its own ACL user, with that user's key of the users Secret.
    assert (job_env["REDIS_USER"], job_env["REDIS_PASSWORD_FILE"]) == (
        "bootstrap",
        "/etc/redis-auth/bootstrap",
    )
    secret = tmp_path / "bootstrap"
    secret.write_text("from-the-secret")
    settings = parse_job_settings([], {**job_env, "REDIS_PASSWORD_FILE": str(secret)})
    sts = by_kind(objects, "StatefulSet")
    assert settings.cluster_size == sts["spec"]["replicas"]
    assert settings.cluster.statefulset_name == sts["metadata"]["name"]
    assert settings.cluster.headless_service == sts["spec"]["serviceName"]
    assert settings.cluster.namespace == "prod"
    assert settings.cluster.read_access() == Access("from-the-secret", "bootstrap")
    sidecar = sts["spec"]["template"]["spec"]["initContainers"][0]
    sidecar_env = settings_env(objects, sidecar)
    assert Path(sidecar_env["REDIS_PASSWORD_FILE"]) == Path(mounts_of(sidecar)["auth"], "sidecar")
    assert sidecar_env["USERS_DIR"] == mounts_of(sidecar)["auth"]
    assert Path(sidecar_env["ACL_FILE"]).parent == Path(sidecar_env["AUTH_CONF"]).parent
    side = parse_sidecar_settings([], {**sidecar_env, "REDIS_PASSWORD_FILE": str(secret)})
    assert (side.pod_ip, side.pod_name, side.node_name) == ("10.1.2.3", "redis-4", "node-a")
    assert side.zone == "zone-a"
    assert side.pod_fqdn == "redis-4.redis-headless.prod.svc.cluster.local"
    assert side.cluster.read_access() == Access("from-the-secret", "sidecar")
    port = sidecar["ports"][0]["containerPort"]
    assert side.http_port == port == settings.sidecar_port


SHUTDOWN_MARGIN_SECONDS = 10
"""Beyond the handover and shutdown-timeout: the AOF fsync and the process exit."""


def test_a_stopping_master_hands_over_within_the_grace_period(
    objects: list[dict[str, Any]], tmp_path: Path
) -> None:
    sts = by_kind(objects, "StatefulSet")
    spec = sts["spec"]["template"]["spec"]
    redis_container = spec["containers"][0]
    sidecar = spec["initContainers"][0]
    hook = " ".join(redis_container["lifecycle"]["preStop"]["exec"]["command"])
    secret = tmp_path / "password"
    secret.write_text("x\n")
    env = {**settings_env(objects, sidecar), "REDIS_PASSWORD_FILE": str(secret)}
    settings = parse_sidecar_settings([], env)
    handover = settings.handover_timeout_seconds
    # The hook asks in the handover volume both containers mount, and waits longer than the
    # handover may take.
    mounts = {
        c["name"]: {m["name"]: m["mountPath"] for m in c["volumeMounts"]}
        for c in (redis_container, sidecar)
    }
    directory = str(settings.handover_dir)
    assert mounts["redis"]["handover"] == mounts["sidecar"]["handover"] == directory
    assert f"{directory}/request" in hook and f"{directory}/done" in hook
    polls = re.search(r"-lt (\d+) \]; do sleep ([\d.]+);", hook)
    assert polls, hook
    assert handover < int(polls[1]) * float(polls[2]), hook
    conf = ROOT / "manifests" / "redis.conf"
    shutdown = next(
        int(line.split()[1])
        for line in conf.read_text().splitlines()
        if line.startswith("shutdown-timeout ")
    )
    # The kubelet waits for the hook, then sends SIGTERM; all of it within the grace period.
    grace = spec["terminationGracePeriodSeconds"]
    assert handover + shutdown + SHUTDOWN_MARGIN_SECONDS <= grace, (handover, shutdown, grace)
    # A rolling update waits this long after a restarted pod is ready (its link is up).
    assert sts["spec"]["minReadySeconds"] >= 5


def test_dockerfiles_pass_hadolint() -> None:
    result = subprocess.run(
        [
            tool("hadolint"),
            "--failure-threshold",
            "warning",
            "--no-color",
            str(ROOT / "Dockerfile.init"),
            str(ROOT / "Dockerfile.sidecar"),
        ],
        capture_output=True,
        text=True,
        check=False,  # the return code is asserted below, with the findings
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    for name, module in (("Dockerfile.init", "bootstrap"), ("Dockerfile.sidecar", "sidecar")):
        text = (ROOT / name).read_text()
        assert f'ENTRYPOINT ["python", "-m", "{module}"]' in text
        assert "USER 10001" in text


@pytest.fixture
def shipped_redis(objects: list[dict[str, Any]], tmp_path: Path) -> Iterator[redis.Redis]:
    """The redis container's own command and the rendered ConfigMap's redis.conf, run here with
    the pod's paths moved under tmp_path and a loopback bind added."""
    config = next(o for o in objects if o["kind"] == "ConfigMap" and "redis.conf" in o["data"])
    sts = by_kind(objects, "StatefulSet")
    container = sts["spec"]["template"]["spec"]["containers"][0]
    for directory in ("etc/redis", "etc/redis-auth", "run/redis", "data"):
        (tmp_path / directory).mkdir(parents=True)
    (tmp_path / "etc/redis/redis.conf").write_text(config["data"]["redis.conf"])
    # What the sidecar writes there (AUTH_CONF) before Redis starts.
    (tmp_path / "run/redis/auth.conf").write_text(auth_include("s3cret pw"))
    script = container["command"][2].replace("exec redis-server ", f"exec {server_bin()} ")
    for path in ("/etc/redis-auth/", "/etc/redis/", "/run/redis/"):
        script = script.replace(path, f"{tmp_path}{path}")
    ip = f"127.{random_octet()}.77.1"
    env = {**settings_env(objects, container), "PATH": os.environ["PATH"]}
    process = subprocess.Popen(
        ["sh", "-c", f"{script} --bind {ip} --bind-source-addr {ip}"],
        cwd=tmp_path / "data",
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    client = connect(ip, 6379, Access("s3cret pw"), timeout=1.0)
    try:
        with contextlib.suppress(WaitTimeout):  # the test's own PING reports what went wrong
            wait_until(
                lambda: process.poll() is not None or client.ping(),
                timeout=10,
                what="the shipped redis.conf to serve",
                retry_on=(redis.ConnectionError,),
            )
        yield client
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_shipped_redis_conf_runs_a_cluster_node_with_a_password(
    shipped_redis: redis.Redis,
) -> None:
    assert shipped_redis.ping() is True
    assert shipped_redis.config_get("cluster-enabled") == {"cluster-enabled": "yes"}
    assert shipped_redis.config_get("appendonly") == {"appendonly": "yes"}
    info = shipped_redis.cluster("info")
    assert info["cluster_known_nodes"] == "1"
    hostname = shipped_redis.config_get("cluster-announce-hostname")["cluster-announce-hostname"]
    assert hostname == "redis-4.redis-headless.prod.svc.cluster.local"
    host = shipped_redis.connection_pool.connection_kwargs["host"]
    with pytest.raises(redis.AuthenticationError):
        connect(host, 6379, None).ping()


def test_shipped_redis_is_sized_from_its_memory_limit_with_the_aof_only(
    shipped_redis: redis.Redis, objects: list[dict[str, Any]]
) -> None:
    container = by_kind(objects, "StatefulSet")["spec"]["template"]["spec"]["containers"][0]
    assert settings_env(objects, container)["MAXMEMORY_PERCENT"] == "70"
    reported = int(str(shipped_redis.config_get("maxmemory")["maxmemory"]))
    # 70 % of the 64 MiB limit (67,108,864 bytes), as the container's shell computes it:
    # 67108864 / 100 = 671088 (whole bytes), times 70.
    assert reported == 46_976_160
    assert 0.6 * TEST_MEMORY_LIMIT <= reported <= 0.8 * TEST_MEMORY_LIMIT
    assert shipped_redis.config_get("maxmemory-policy")["maxmemory-policy"] == "noeviction"
    assert shipped_redis.config_get("save")["save"] == ""
    assert shipped_redis.config_get("appendonly")["appendonly"] == "yes"


def test_every_container_of_the_redis_pod_is_guaranteed_qos(objects: list[dict[str, Any]]) -> None:
    spec = by_kind(objects, "StatefulSet")["spec"]["template"]["spec"]
    for container in spec["initContainers"] + spec["containers"]:
        resources = container["resources"]
        assert resources["requests"] == resources["limits"], container["name"]
        assert set(resources["limits"]) == {"cpu", "memory"}, container["name"]
