"""What the sidecar gives Redis (ACL file, include with TLS) and how the programs authenticate:
pure rendering and file reading, no server."""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest
import redis

from bootstrap.errors import BadSettings
from bootstrap.settings import parse_job_settings
from clusterkit.core.redisconf import (
    USER_NAMES,
    TlsServer,
    acl_file,
    password_hash,
    users_include,
)
from clusterkit.io.access import Access, TlsError, explain_tls_failure
from clusterkit.io.settings import ClusterSettings, SettingsError
from sidecar.pingcheck import classify_ping
from sidecar.redisfiles import RedisFilesError, render
from sidecar.settings import SidecarSettings

PASSWORDS = {name: f"{name}-secret".encode() for name in USER_NAMES}


def test_the_acl_file_turns_default_off_and_holds_no_password() -> None:
    text = acl_file(PASSWORDS)
    lines = text.splitlines()
    assert lines[0].startswith("user default off")
    assert [line.split()[1] for line in lines] == ["default", *USER_NAMES]
    for name, password in PASSWORDS.items():
        assert password.decode() not in text
        assert f"user {name} on {password_hash(password)} " in text


def test_the_app_user_is_denied_administration_and_the_sidecar_every_key() -> None:
    rules = {line.split()[1]: line for line in acl_file(PASSWORDS).splitlines()}
    assert "-@admin -@dangerous -migrate" in rules["app"]
    assert "resetkeys" in rules["sidecar"] and "~" not in rules["sidecar"]
    assert "resetkeys" in rules["replication"] and "+psync" in rules["replication"]
    assert "+migrate" in rules["bootstrap"] and "+flushall" not in rules["bootstrap"]


def test_a_legacy_password_beside_users_keeps_default_on_with_the_apps_rules() -> None:
    first = acl_file(PASSWORDS, legacy=b"old pw").splitlines()[0]
    assert first.startswith(f"user default on {password_hash(b'old pw')} ~* &* +@all -@admin")


def test_users_include_names_the_acl_file_and_replication_credentials() -> None:
    text = users_include(Path("/run/redis/users.acl"), b'pw"\n')
    assert text == (
        'aclfile "/run/redis/users.acl"\nmasteruser replication\nmasterauth "pw\\x22\\x0a"\n'
    )


def test_tls_include_serves_tls_only_on_every_link() -> None:
    server = TlsServer(6380, Path("/t/tls.crt"), Path("/t/tls.key"), Path("/t/ca.crt"))
    lines = server.include().splitlines()
    assert lines[:5] == [
        "port 0",
        "tls-port 6380",
        "tls-cluster yes",
        "tls-replication yes",
        "tls-auth-clients yes",
    ]
    assert server.reload_command()[:3] == ("CONFIG", "SET", "tls-cert-file")


def sidecar(tmp_path: Path, **fields: object) -> SidecarSettings:
    cluster = ClusterSettings("redis", "redis-headless", redis_port=6379)
    return SidecarSettings(cluster, "10.0.0.1", "redis-0", **fields)  # type: ignore[arg-type]


def write_users(directory: Path, names: tuple[str, ...] = USER_NAMES) -> Path:
    directory.mkdir(exist_ok=True)
    for name in names:
        (directory / name).write_bytes(PASSWORDS[name])
    return directory


def test_render_with_every_user_writes_an_acl_file(tmp_path: Path) -> None:
    users = write_users(tmp_path / "auth")
    files = render(sidecar(tmp_path, users_dir=users, acl_file=tmp_path / "users.acl"))
    assert files.users and files.acl is not None
    assert f'aclfile "{tmp_path}/users.acl"' in files.include


def test_render_with_only_the_legacy_key_uses_requirepass(tmp_path: Path) -> None:
    users = tmp_path / "auth"
    users.mkdir()
    (users / "password").write_bytes(b"old")
    files = render(sidecar(tmp_path, users_dir=users, acl_file=tmp_path / "users.acl"))
    assert not files.users and files.acl is None
    assert files.include == 'requirepass "old"\nmasterauth "old"\n'


def test_render_names_the_missing_user_keys(tmp_path: Path) -> None:
    users = write_users(tmp_path / "auth", ("app", "bootstrap"))
    with pytest.raises(RedisFilesError, match="sidecar, replication"):
        render(sidecar(tmp_path, users_dir=users, acl_file=tmp_path / "users.acl"))


def test_render_refuses_an_empty_user_password(tmp_path: Path) -> None:
    users = write_users(tmp_path / "auth")
    (users / "app").write_bytes(b"")
    with pytest.raises(RedisFilesError, match="empty"):
        render(sidecar(tmp_path, users_dir=users, acl_file=tmp_path / "users.acl"))


def test_tls_settings_go_together(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="go together"):
        ClusterSettings("redis", "hl", tls_ca_file=tmp_path / "ca.crt")


def test_a_program_falls_back_to_the_single_password_layout(tmp_path: Path) -> None:
    (tmp_path / "password").write_bytes(b"old")
    cluster = ClusterSettings(
        "redis", "hl", redis_user="bootstrap", redis_password_file=tmp_path / "bootstrap"
    )
    assert cluster.read_access() == Access("old", None)
    (tmp_path / "bootstrap").write_bytes(b"new")
    assert cluster.read_access() == Access("new", "bootstrap")


def test_migrate_authenticates_as_the_same_user() -> None:
    assert Access("pw", "bootstrap").auth_args() == ("AUTH2", "bootstrap", "pw")
    assert Access("pw").auth_args() == ("AUTH", "pw")
    assert Access().auth_args() == ()


def test_verification_failures_are_explained_and_network_ones_are_not() -> None:
    verify = ssl.SSLCertVerificationError(1, "certificate verify failed")
    verify.verify_message = "unable to get local issuer certificate"
    wrapped = redis.ConnectionError("Error 1 connecting")
    wrapped.__context__ = verify
    explained = explain_tls_failure(wrapped, "redis-0.hl.ns.svc.cluster.local")
    assert explained is not None and "TLS_CA_FILE" in explained
    assert "redis-0.hl.ns.svc.cluster.local" in explained
    assert explain_tls_failure(redis.ConnectionError("Connection refused"), "x") is None
    assert explain_tls_failure(redis.TimeoutError("Timeout connecting"), "x") is None
    assert explain_tls_failure(TlsError("TLS files cannot be read"), "x") is not None


def test_app_rules_can_be_narrowed_but_never_carry_a_password(tmp_path: Path) -> None:
    users = write_users(tmp_path / "auth")
    narrow = "~* &* -@all +@read +@connection +cluster|slots"
    files = render(
        sidecar(tmp_path, users_dir=users, acl_file=tmp_path / "a.acl", app_acl_rules=narrow)
    )
    assert files.acl is not None
    assert f"user app on {password_hash(PASSWORDS['app'])} {narrow}" in files.acl
    for bad in ("nopass +@all", "+@all >extra-password", "+@all\nuser x on"):
        with pytest.raises(SettingsError, match="APP_ACL_RULES"):
            sidecar(tmp_path, app_acl_rules=bad)


def test_a_certificate_failure_makes_the_pod_unready_with_the_reason_not_hung() -> None:
    verify = ssl.SSLCertVerificationError(1, "certificate verify failed")
    verify.verify_message = "self-signed certificate in certificate chain"
    wrapped = redis.ConnectionError("Error 1 connecting")
    wrapped.__context__ = verify
    outcome, reason = classify_ping(wrapped)
    assert outcome == "error" and "TLS_CA_FILE" in reason
    assert classify_ping(redis.ConnectionError("Connection refused"))[0] == "down"


def test_the_job_refuses_tls_files_that_do_not_load(tmp_path: Path) -> None:
    (tmp_path / "bootstrap").write_bytes(b"pw")
    env = {
        "STATEFULSET_NAME": "redis",
        "HEADLESS_SERVICE": "hl",
        "CLUSTER_SIZE": "6",
        "REDIS_PASSWORD_FILE": str(tmp_path / "bootstrap"),
        "TLS_CA_FILE": str(tmp_path / "ca.crt"),
        "TLS_CERT_FILE": str(tmp_path / "tls.crt"),
        "TLS_KEY_FILE": str(tmp_path / "tls.key"),
    }
    with pytest.raises(BadSettings, match="mount the TLS Secret"):
        parse_job_settings([], env)
    for name in ("ca.crt", "tls.crt", "tls.key"):
        (tmp_path / name).write_text("not PEM")
    with pytest.raises(BadSettings, match="cannot be loaded"):
        parse_job_settings([], env)
