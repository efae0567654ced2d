"""bootstrap.settings.parse_settings: environment, flags, validation, password file."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bootstrap.errors import BadSettings, ExitCode
from bootstrap.settings import Settings, parse_job_settings
from clusterkit.core.redisconf import password_bytes
from clusterkit.io.access import Access
from clusterkit.io.settings import ClusterSettings

REQUIRED = {"STATEFULSET_NAME": "redis", "HEADLESS_SERVICE": "redis-headless", "CLUSTER_SIZE": "6"}


def settings_from(argv: list[str] | None = None, **env: str) -> Settings:
    return parse_job_settings(argv or [], {**REQUIRED, **env})


def bad(argv: list[str] | None = None, **env: str) -> str:
    with pytest.raises(BadSettings) as info:
        parse_job_settings(argv or [], {**REQUIRED, **env})
    assert info.value.exit_code == ExitCode.BAD_SETTINGS
    return str(info.value)


def test_defaults_from_the_required_environment() -> None:
    s = settings_from()
    assert (s.cluster.statefulset_name, s.cluster.headless_service, s.cluster_size) == (
        "redis",
        "redis-headless",
        6,
    )
    assert (s.cluster.namespace, s.cluster.cluster_domain, s.replicas_per_master) == (
        "default",
        "cluster.local",
        1,
    )
    assert (s.cluster.redis_port, s.cluster.redis_password_file, s.cluster.dns_nameserver) == (
        6379,
        None,
        None,
    )
    assert (s.timeout_seconds, s.cluster.log_level, s.masters) == (600.0, "INFO", 3)
    assert s.cluster.nameserver_address() is None and s.cluster.read_access().password is None
    assert s.cluster.naming.pod_fqdn(2) == "redis-2.redis-headless.default.svc.cluster.local"


def test_every_setting_from_the_environment(tmp_path: Path) -> None:
    secret = tmp_path / "password"
    secret.write_text("s3cret")
    s = parse_job_settings(
        [],
        {
            "STATEFULSET_NAME": "cache",
            "HEADLESS_SERVICE": "cache-hl",
            "CLUSTER_SIZE": "9",
            "NAMESPACE": "prod",
            "CLUSTER_DOMAIN": "k8s.local",
            "REPLICAS_PER_MASTER": "2",
            "REDIS_PORT": "7000",
            "REDIS_PASSWORD_FILE": str(secret),
            "DNS_NAMESERVER": "10.0.0.10",
            "TIMEOUT_SECONDS": "90.5",
            "LOG_LEVEL": "DEBUG",
        },
    )
    assert s == Settings(
        ClusterSettings(
            "cache", "cache-hl", "prod", "k8s.local", 7000, secret, "10.0.0.10", log_level="DEBUG"
        ),
        cluster_size=9,
        replicas_per_master=2,
        timeout_seconds=90.5,
    )
    assert s.masters == 3
    assert s.cluster.naming.pod_fqdn(8) == "cache-8.cache-hl.prod.svc.k8s.local"
    assert s.cluster.read_access() == Access("s3cret")


def test_flags_override_the_environment() -> None:
    s = settings_from(
        [
            "--cluster-size",
            "9",
            "--replicas-per-master",
            "2",
            "--namespace",
            "ns1",
            "--redis-port=7001",
        ],
        CLUSTER_SIZE="6",
        NAMESPACE="ns2",
        REDIS_PORT="6380",
    )
    assert (s.cluster_size, s.replicas_per_master, s.cluster.namespace, s.cluster.redis_port) == (
        9,
        2,
        "ns1",
        7001,
    )


def test_flags_alone_are_enough() -> None:
    s = parse_job_settings(
        [
            "--statefulset-name",
            "a",
            "--headless-service",
            "b",
            "--cluster-size",
            "3",
            "--replicas-per-master",
            "0",
        ],
        {},
    )
    assert (s.cluster.statefulset_name, s.cluster.headless_service, s.cluster_size, s.masters) == (
        "a",
        "b",
        3,
        3,
    )


def test_namespace_falls_back_to_pod_namespace() -> None:
    assert settings_from(POD_NAMESPACE="from-pod").cluster.namespace == "from-pod"
    assert settings_from(POD_NAMESPACE="from-pod", NAMESPACE="set").cluster.namespace == "set"
    assert (
        settings_from(["--namespace", "flag"], POD_NAMESPACE="from-pod").cluster.namespace == "flag"
    )
    assert settings_from(POD_NAMESPACE="").cluster.namespace == "default"


def test_empty_values_count_as_unset() -> None:
    s = settings_from(NAMESPACE="", REDIS_PORT="", DNS_NAMESERVER="", REDIS_PASSWORD_FILE="")
    assert (
        s.cluster.namespace,
        s.cluster.redis_port,
        s.cluster.dns_nameserver,
        s.cluster.redis_password_file,
    ) == (
        "default",
        6379,
        None,
        None,
    )


def test_missing_required_settings_are_all_named() -> None:
    with pytest.raises(BadSettings) as info:
        parse_job_settings([], {"HEADLESS_SERVICE": "h", "CLUSTER_SIZE": ""})
    assert "STATEFULSET_NAME" in str(info.value) and "CLUSTER_SIZE" in str(info.value)
    assert "HEADLESS_SERVICE" not in str(info.value)


@pytest.mark.parametrize(
    ("size", "replicas", "masters"),
    [(6, 1, 3), (3, 0, 3), (9, 2, 3), (12, 3, 3), (8, 1, 4), (300, 1, 150), (4, 0, 4)],
)
def test_cluster_size_allowed(size: int, replicas: int, masters: int) -> None:
    s = settings_from(CLUSTER_SIZE=str(size), REPLICAS_PER_MASTER=str(replicas))
    assert s.masters == masters


@pytest.mark.parametrize(
    ("size", "replicas", "message"),
    [
        ("5", "1", "multiple of 1 + REPLICAS_PER_MASTER (2)"),
        ("4", "1", "at least 3 masters"),
        ("2", "0", "at least 3 masters"),
        ("6", "2", "at least 3 masters; e.g. 9"),
        ("7", "2", "multiple"),
        ("0", "1", "positive"),
        ("-6", "1", "positive"),
        ("6", "-1", "0 or more"),
        ("six", "1", "not a whole number"),
        ("6", "1.0", "not a whole number"),
    ],
)
def test_cluster_size_rejected(size: str, replicas: str, message: str) -> None:
    assert message in bad(CLUSTER_SIZE=size, REPLICAS_PER_MASTER=replicas)


@given(st.integers(1, 400), st.integers(0, 5))
def test_cluster_size_rule(size: int, replicas: int) -> None:
    env = {"CLUSTER_SIZE": str(size), "REPLICAS_PER_MASTER": str(replicas)}
    valid = size % (1 + replicas) == 0 and size // (1 + replicas) >= 3
    try:
        s = parse_job_settings([], {**REQUIRED, **env})
    except BadSettings:
        assert not valid
    else:
        assert valid and s.masters * (1 + replicas) == size


@pytest.mark.parametrize(
    ("port", "ok"),
    [("1", True), ("55535", True), ("55536", False), ("0", False), ("-1", False), ("port", False)],
)
def test_redis_port_leaves_room_for_the_bus(port: str, ok: bool) -> None:
    if ok:
        assert settings_from(REDIS_PORT=port).cluster.redis_port == int(port)
    else:
        bad(REDIS_PORT=port)


@pytest.mark.parametrize("timeout", ["0", "-5", "soon"])
def test_timeout_must_be_a_positive_number(timeout: str) -> None:
    bad(TIMEOUT_SECONDS=timeout)


def test_timeout_nan_is_rejected() -> None:
    bad(TIMEOUT_SECONDS="nan")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("10.0.0.10", ("10.0.0.10", 53)),
        ("10.0.0.10:5353", ("10.0.0.10", 5353)),
        ("kube-dns.kube-system:53", ("kube-dns.kube-system", 53)),
        ("[::1]:53", ("::1", 53)),
        ("[fd00::10]:5353", ("fd00::10", 5353)),
        ("[::1]", ("::1", 53)),
        ("::1", ("::1", 53)),
        ("fd00::10", ("fd00::10", 53)),
        (" 127.0.0.53:53 ", ("127.0.0.53", 53)),
    ],
)
def test_dns_nameserver(text: str, expected: tuple[str, int]) -> None:
    assert settings_from(DNS_NAMESERVER=text).cluster.nameserver_address() == expected


@pytest.mark.parametrize(
    "text", ["10.0.0.10:", ":53", "10.0.0.10:dns", "[::1]x", "[::1]:p", "[]:53"]
)
def test_dns_nameserver_rejected(text: str) -> None:
    assert "DNS_NAMESERVER" in bad(DNS_NAMESERVER=text)


@pytest.mark.parametrize("text", ["10.0.0.10:0", "10.0.0.10:70000", "[::1]:99999", "[::1"])
def test_dns_nameserver_out_of_range_rejected(text: str) -> None:
    bad(DNS_NAMESERVER=text)


@pytest.mark.parametrize(
    "content",
    [
        b"s3cret",
        b"s3cret\n",
        b"s3cret\r\n",
        b'with "quotes" \\ %s \\n',
        "pässwörd".encode(),
        b"\xff\xfe",
    ],
)
def test_password_file_is_every_byte(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "pw"
    path.write_bytes(content)
    s = settings_from(["--redis-password-file", str(path)])
    assert s.cluster.redis_password_file == path
    password = s.cluster.read_access().password
    assert password is not None and password_bytes(password) == content


def test_empty_password_file_is_bad_settings(tmp_path: Path) -> None:
    path = tmp_path / "pw"
    path.write_bytes(b"")
    with pytest.raises(BadSettings, match="is empty") as info:
        settings_from(REDIS_PASSWORD_FILE=str(path))
    assert info.value.exit_code == ExitCode.BAD_SETTINGS


def test_unreadable_password_file_is_bad_settings(tmp_path: Path) -> None:
    missing = tmp_path / "nope"
    with pytest.raises(BadSettings, match="REDIS_PASSWORD_FILE") as info:
        settings_from(REDIS_PASSWORD_FILE=str(missing))  # checked when the settings are read
    assert str(missing) in str(info.value)
    assert info.value.exit_code == ExitCode.BAD_SETTINGS


def test_move_parallelism_defaults_to_four_and_takes_one_or_more() -> None:
    assert settings_from().move_parallelism == 4
    assert settings_from(MOVE_PARALLELISM="1").move_parallelism == 1


@pytest.mark.parametrize("value", ["0", "-1", "many"])
def test_move_parallelism_below_one_is_rejected(value: str) -> None:
    bad(MOVE_PARALLELISM=value)
