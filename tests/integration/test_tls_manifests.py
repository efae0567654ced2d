"""The TLS and cert-manager components, rendered as examples/tls-cert-manager uses them: every
program gets the TLS Secret where its settings say, the sidecar writes a TLS-only Redis include
from them, and the certificate names every pod's FQDN in the overlay's namespace."""

from __future__ import annotations

import fnmatch
import os
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest

from bootstrap.settings import parse_job_settings
from clusterkit.core.redisconf import USER_NAMES
from devcluster import certs
from sidecar.redisfiles import render as render_redis_files
from sidecar.settings import parse_sidecar_settings
from tests.integration.kustomize import ROOT, by_kind, mounts_of, render, settings_env

pytestmark = pytest.mark.integration

EXAMPLE = ROOT / "examples" / "tls-cert-manager"
TLS_MOUNT = "/etc/redis-tls"
TLS_SETTINGS = ("TLS_CA_FILE", "TLS_CERT_FILE", "TLS_KEY_FILE")


@pytest.fixture(scope="module")
def objects() -> list[dict[str, Any]]:
    return render(EXAMPLE)


def tls_secret(pod: dict[str, Any]) -> str:
    volume = next(v for v in pod["volumes"] if v["name"] == "tls")
    return str(volume["secret"]["secretName"])


def test_every_program_mounts_the_tls_secret(objects: list[dict[str, Any]]) -> None:
    sts = by_kind(objects, "StatefulSet")["spec"]["template"]["spec"]
    job = by_kind(objects, "Job")["spec"]["template"]["spec"]
    cron = by_kind(objects, "CronJob")["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    certificate = next(
        o
        for o in objects
        if o["kind"] == "Certificate" and o["metadata"]["name"] == "redis-cluster-tls"
    )
    secret = certificate["spec"]["secretName"]
    for pod in (sts, job, cron):
        assert tls_secret(pod) == secret
    for container in (sts["initContainers"][0], sts["containers"][0], job["containers"][0]):
        assert mounts_of(container)["tls"] == TLS_MOUNT, container["name"]


def test_the_settings_point_into_the_mount_and_parse(
    objects: list[dict[str, Any]], tmp_path: Path
) -> None:
    sts = by_kind(objects, "StatefulSet")["spec"]["template"]["spec"]
    job = by_kind(objects, "Job")["spec"]["template"]["spec"]["containers"][0]
    sidecar_env = settings_env(objects, sts["initContainers"][0])
    for name in TLS_SETTINGS:
        assert Path(sidecar_env[name]).parent == Path(TLS_MOUNT), name
    assert settings_env(objects, job)["TLS_CA_FILE"] == sidecar_env["TLS_CA_FILE"]
    # The sidecar's include, from these settings (users Secret and paths moved to tmp_path).
    users = tmp_path / "auth"
    users.mkdir()
    for user in USER_NAMES:
        (users / user).write_text(f"{user}-pw")
    local = {
        **sidecar_env,
        "USERS_DIR": str(users),
        "REDIS_PASSWORD_FILE": str(users / "sidecar"),
        "ACL_FILE": str(tmp_path / "users.acl"),
    }
    side = parse_sidecar_settings([], local)
    files = render_redis_files(side)
    lines = files.include.splitlines()
    for line in ("port 0", "tls-port 6379", "tls-cluster yes", "tls-replication yes"):
        assert line in lines
    assert "tls-auth-clients yes" in lines
    assert f'tls-ca-cert-file "{TLS_MOUNT}/ca.crt"' in lines
    assert "cluster-preferred-endpoint-type hostname" in lines
    assert files.acl is not None and "user default off" in files.acl
    # The Job loads its TLS files at start: real ones, at the settings' names moved here.
    tls = certs.issue(certs.make_ca(tmp_path / "ca").parent, tmp_path / "tls", ["x"], "job")
    job_env = {
        **settings_env(objects, job),
        "REDIS_PASSWORD_FILE": str(users / "bootstrap"),
        **{n: str(tls / Path(sidecar_env[n]).name) for n in TLS_SETTINGS},
    }
    assert parse_job_settings([], job_env).cluster.tls_files is not None


def test_the_certificate_names_every_pod_in_the_overlays_namespace(
    objects: list[dict[str, Any]],
) -> None:
    certificate = next(
        o
        for o in objects
        if o["kind"] == "Certificate" and o["metadata"]["name"] == "redis-cluster-tls"
    )
    spec = certificate["spec"]
    sts = by_kind(objects, "StatefulSet")
    namespace = sts["metadata"]["namespace"]
    assert namespace == "cache"
    service = sts["spec"]["serviceName"]
    for ordinal in (0, 5, 99):
        fqdn = f"redis-{ordinal}.{service}.{namespace}.svc.cluster.local"
        assert any(fnmatch.fnmatchcase(fqdn, name) for name in spec["dnsNames"]), fqdn
    assert f"redis.{namespace}.svc.cluster.local" in spec["dnsNames"]
    assert {"server auth", "client auth"} <= set(spec["usages"])
    issuer = spec["issuerRef"]["name"]
    assert any(o["kind"] == "Issuer" and o["metadata"]["name"] == issuer for o in objects)


def test_core_objects_stay_valid(objects: list[dict[str, Any]]) -> None:
    for obj in objects:
        if obj["apiVersion"].startswith("cert-manager.io/"):
            continue
        kubernetes_validate.validate(obj, "1.29.0", strict=True)


def test_the_plain_base_has_no_tls() -> None:
    base = render()
    settings = next(
        o for o in base if o["kind"] == "ConfigMap" and "STATEFULSET_NAME" in o.get("data", {})
    )
    assert not any(k.startswith("TLS_") for k in settings["data"])
    pod = by_kind(base, "StatefulSet")["spec"]["template"]["spec"]
    assert "tls" not in {v["name"] for v in pod["volumes"]}


def test_a_renamed_overlay_with_the_examples_replacements_names_its_pods(tmp_path: Path) -> None:
    """namePrefix and namespace, with the example's replacements copied in: the certificate
    names the renamed pods and Services, and references the renamed Issuer."""
    example = (EXAMPLE / "kustomization.yaml").read_text()
    base = os.path.relpath(ROOT / "manifests", tmp_path)
    (tmp_path / "kustomization.yaml").write_text(
        f"namePrefix: cache-\nnamespace: shop\nresources: [{base}]\n"
        f"components: [{base}/components/tls, {base}/components/cert-manager]\n"
        + example[example.index("replacements:") :]
    )
    objects = render(tmp_path)
    certificate = next(
        o
        for o in objects
        if o["kind"] == "Certificate" and o["metadata"]["name"] == "cache-redis-cluster-tls"
    )
    names = certificate["spec"]["dnsNames"]
    fqdn = "cache-redis-5.cache-redis-headless.shop.svc.cluster.local"
    assert any(fnmatch.fnmatchcase(fqdn, name) for name in names), names
    assert "cache-redis.shop.svc.cluster.local" in names
    issuers = {o["metadata"]["name"] for o in objects if o["kind"] == "Issuer"}
    assert certificate["spec"]["issuerRef"]["name"] in issuers
