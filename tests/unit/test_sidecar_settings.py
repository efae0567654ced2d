"""sidecar.settings.parse_sidecar_settings: environment, flags, validation, pod FQDN."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from clusterkit.io.access import Access
from clusterkit.io.dnsio import make_resolver
from clusterkit.io.settings import SettingsError
from sidecar.settings import SidecarSettings, parse_sidecar_settings

REQUIRED = {
    "POD_IP": "10.0.0.7",
    "POD_NAME": "redis-3",
    "STATEFULSET_NAME": "redis",
    "HEADLESS_SERVICE": "redis-hl",
}


def parse(argv: list[str] | None = None, /, **env: str) -> SidecarSettings:
    return parse_sidecar_settings(argv or [], {**REQUIRED, **env})


def bad(argv: list[str] | None = None, /, **env: str) -> str:
    with pytest.raises(SettingsError) as info:
        parse_sidecar_settings(argv or [], {**REQUIRED, **env})
    return str(info.value)


def test_defaults() -> None:
    s = parse()
    assert (s.pod_ip, s.pod_name, s.cluster.statefulset_name, s.cluster.headless_service) == (
        "10.0.0.7",
        "redis-3",
        "redis",
        "redis-hl",
    )
    assert (s.cluster.namespace, s.cluster.cluster_domain, s.node_name) == (
        "default",
        "cluster.local",
        "",
    )
    assert (s.nodes_conf, s.cluster.redis_port, s.cluster.redis_password_file) == (
        Path("/data/nodes.conf"),
        6379,
        None,
    )
    assert (s.http_host, s.http_port, s.heal_interval_seconds) == ("", 9380, 1.0)
    assert (
        s.cluster.dns_nameserver,
        s.cluster.nameserver_address(),
        s.cluster.read_access().password,
    ) == (None, None, None)
    assert s.termination_log == Path("/dev/termination-log") and s.cluster.log_level == "INFO"


def test_every_setting_from_the_environment(tmp_path: Path) -> None:
    secret = tmp_path / "password"
    secret.write_text("s3cret")
    s = parse(
        NAMESPACE="prod",
        CLUSTER_DOMAIN="k8s.local",
        NODE_NAME="worker-1",
        NODES_CONF="/var/lib/redis/nodes.conf",
        REDIS_PORT="7000",
        REDIS_PASSWORD_FILE=str(secret),
        DNS_NAMESERVER="10.96.0.10:5353",
        HTTP_HOST="127.0.0.1",
        HTTP_PORT="8080",
        HEAL_INTERVAL_SECONDS="0.25",
        TERMINATION_LOG=str(tmp_path / "term"),
        LOG_LEVEL="DEBUG",
    )
    assert (s.cluster.namespace, s.cluster.cluster_domain, s.node_name) == (
        "prod",
        "k8s.local",
        "worker-1",
    )
    assert s.nodes_conf == Path("/var/lib/redis/nodes.conf") and s.cluster.redis_port == 7000
    assert s.cluster.read_access() == Access("s3cret")
    assert s.cluster.nameserver_address() == ("10.96.0.10", 5353)
    assert (s.http_host, s.http_port, s.heal_interval_seconds) == ("127.0.0.1", 8080, 0.25)
    assert (s.termination_log, s.cluster.log_level) == (tmp_path / "term", "DEBUG")
    assert s.pod_fqdn == "redis-3.redis-hl.prod.svc.k8s.local"


@pytest.mark.parametrize(
    ("env", "missing"),
    [
        ({}, ["POD_IP", "POD_NAME", "STATEFULSET_NAME", "HEADLESS_SERVICE"]),
        ({"POD_IP": "10.0.0.1", "HEADLESS_SERVICE": "h"}, ["POD_NAME", "STATEFULSET_NAME"]),
        ({**REQUIRED, "POD_IP": ""}, ["POD_IP"]),
    ],
)
def test_missing_required_settings_are_all_named(env: dict[str, str], missing: list[str]) -> None:
    with pytest.raises(SettingsError) as info:
        parse_sidecar_settings([], env)
    message = str(info.value)
    assert [name for name in REQUIRED if name in message] == missing


def test_flags_alone_are_enough_and_override_the_environment() -> None:
    argv = ["--pod-ip", "10.1.1.1", "--pod-name=cache-0", "--statefulset-name", "cache"]
    argv += ["--headless-service", "cache-hl", "--redis-port", "7001", "--namespace", "ns1"]
    s = parse_sidecar_settings(argv, {**REQUIRED, "REDIS_PORT": "6380", "NAMESPACE": "ns2"})
    assert (s.pod_ip, s.pod_name, s.cluster.statefulset_name, s.cluster.headless_service) == (
        "10.1.1.1",
        "cache-0",
        "cache",
        "cache-hl",
    )
    assert (s.cluster.redis_port, s.cluster.namespace) == (7001, "ns1")
    assert s.pod_fqdn == "cache-0.cache-hl.ns1.svc.cluster.local"


def test_namespace_falls_back_to_pod_namespace() -> None:
    assert parse(POD_NAMESPACE="from-pod").cluster.namespace == "from-pod"
    assert parse(POD_NAMESPACE="from-pod", NAMESPACE="set").cluster.namespace == "set"
    assert parse(["--namespace", "flag"], POD_NAMESPACE="from-pod").cluster.namespace == "flag"
    assert parse(POD_NAMESPACE="", NAMESPACE="").cluster.namespace == "default"


def test_unknown_flag_exits_as_argparse_does() -> None:
    with pytest.raises(SystemExit) as info:
        parse(["--no-such-flag", "1"])
    assert info.value.code == 2


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("REDIS_PORT", "six"),
        ("REDIS_PORT", "6379.0"),
        ("HTTP_PORT", "http"),
        ("HEAL_INTERVAL_SECONDS", "fast"),
        ("HEAL_INTERVAL_SECONDS", "1s"),
    ],
)
def test_bad_numbers_name_the_variable(name: str, value: str) -> None:
    kind = "a number" if name.startswith("HEAL") else "a whole number"
    assert bad(**{name: value}) == f"{name}={value!r} is not {kind}"


@pytest.mark.parametrize(
    ("name", "value", "ok"),
    [
        ("REDIS_PORT", "1", True),
        ("REDIS_PORT", "55535", True),  # bus port 65535
        ("REDIS_PORT", "55536", False),
        ("REDIS_PORT", "0", False),
        ("REDIS_PORT", "-1", False),
        ("HTTP_PORT", "65535", True),
        ("HTTP_PORT", "65536", False),
        ("HTTP_PORT", "0", False),
        ("HEAL_INTERVAL_SECONDS", "0.01", True),
        ("HEAL_INTERVAL_SECONDS", "0", False),
        ("HEAL_INTERVAL_SECONDS", "-1", False),
        ("HEAL_INTERVAL_SECONDS", "nan", False),
        ("HEAL_INTERVAL_SECONDS", "inf", False),
        ("HEAL_INTERVAL_SECONDS", "1e999", False),
    ],
)
def test_number_ranges(name: str, value: str, ok: bool) -> None:
    if ok:
        expected = float(value) if name.startswith("HEAL") else int(value)
        settings = parse(**{name: value})
        owner = settings.cluster if name == "REDIS_PORT" else settings
        assert getattr(owner, name.lower()) == expected
    else:
        assert name in bad(**{name: value})


@given(st.integers(-70000, 70000), st.integers(-70000, 70000))
def test_port_rule(redis_port: int, http_port: int) -> None:
    valid = 0 < redis_port <= 55535 and 0 < http_port <= 65535
    try:
        s = parse(REDIS_PORT=str(redis_port), HTTP_PORT=str(http_port))
    except SettingsError:
        assert not valid
    else:
        assert valid and (s.cluster.redis_port, s.http_port) == (redis_port, http_port)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("10.96.0.10", ("10.96.0.10", 53)),
        ("127.0.0.53:5353", ("127.0.0.53", 5353)),
        ("[fd00::10]:5353", ("fd00::10", 5353)),
        ("fd00::10", ("fd00::10", 53)),
    ],
)
def test_dns_nameserver(text: str, expected: tuple[str, int]) -> None:
    s = parse(DNS_NAMESERVER=text)
    assert s.cluster.nameserver_address() == expected
    assert make_resolver(s.cluster.nameserver_address()).port == expected[1]


@pytest.mark.parametrize("text", ["10.0.0.10:", ":53", "10.0.0.10:dns", "[::1]x", "1.2.3.4:99999"])
def test_bad_dns_nameserver_is_rejected_when_parsed(text: str) -> None:
    assert bad(DNS_NAMESERVER=text).startswith("DNS_NAMESERVER")


def test_a_nameserver_given_by_name_is_looked_up_once() -> None:
    s = parse(DNS_NAMESERVER="localhost:5353")
    resolver = make_resolver(s.cluster.nameserver_address())
    assert resolver.nameservers in (["127.0.0.1"], ["::1"])
    assert resolver.port == 5353
    unknown = parse(DNS_NAMESERVER="no-such-name.invalid:53")
    with pytest.raises(ValueError, match=r"no-such-name\.invalid"):
        make_resolver(unknown.cluster.nameserver_address())


@pytest.mark.parametrize(
    ("pod_name", "fqdn"),
    [
        ("redis-0", "redis-0.redis-hl.default.svc.cluster.local"),
        ("redis-12", "redis-12.redis-hl.default.svc.cluster.local"),
        ("other-1", "other-1"),
        ("redis-01", "redis-01"),
    ],
)
def test_pod_fqdn(pod_name: str, fqdn: str) -> None:
    assert parse(POD_NAME=pod_name).pod_fqdn == fqdn


def test_unreadable_password_file_names_the_variable(tmp_path: Path) -> None:
    # Not a settings error for the sidecar: it holds Redis back with the reason on /startupz
    # (tests/integration/test_passwords.py) instead of restarting in a loop.
    s = parse(REDIS_PASSWORD_FILE=str(tmp_path / "absent"))
    with pytest.raises(SettingsError, match="REDIS_PASSWORD_FILE="):
        s.cluster.read_access()


def test_the_crash_watch_is_on_by_default_and_can_be_turned_off() -> None:
    s = parse()
    assert (s.crash_failover, s.crash_refusals, s.crash_probe_seconds) == (True, 3, 0.1)
    assert parse(CRASH_FAILOVER="false").crash_failover is False


@pytest.mark.parametrize(
    ("name", "value"),
    [("CRASH_REFUSALS", "0"), ("CRASH_PROBE_SECONDS", "0"), ("CRASH_PROBE_SECONDS", "nan")],
)
def test_crash_watch_settings_out_of_range_are_rejected(name: str, value: str) -> None:
    assert name in bad(**{name: value})
