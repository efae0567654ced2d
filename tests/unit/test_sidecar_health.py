"""sidecar.health: readiness reasons, liveness, and what each HTTP path answers."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Iterator

import pytest
from hypothesis import given
from hypothesis import strategies as st

from clusterkit.core.nodes import NodeLine, parse_node_line
from clusterkit.core.readiness import readiness
from sidecar.health import HealthState, respond, serve_health
from sidecar.metrics import Metrics
from tests.unit.factories import node_id, node_line

MASTER_ID = node_id("master")


def me(flags: str = "myself,master", slots: str = "0-5460") -> NodeLine:
    master = MASTER_ID if "slave" in flags else "-"
    return parse_node_line(node_line(node_id("me"), flags=flags, master=master, slots=slots))


OK = {"cluster_state": "ok", "cluster_known_nodes": "6"}
FAIL = {"cluster_state": "fail", "cluster_known_nodes": "6"}
ALONE = {"cluster_state": "fail", "cluster_known_nodes": "1"}


@pytest.mark.parametrize(
    ("info", "line", "link", "expected"),
    [
        (OK, me(), None, (True, "ok")),
        (OK, me("myself,slave", ""), "up", (True, "ok")),
        (ALONE, me(slots=""), None, (False, "cluster not formed yet (run the bootstrap Job)")),
        (ALONE, me(), None, (False, "cluster_state is not ok")),
        (FAIL, me(slots=""), None, (False, "cluster_state is not ok")),
        (FAIL, me(), None, (False, "cluster_state is not ok")),
        ({}, me(), None, (False, "cluster_state is not ok")),
        (OK, me(slots=""), None, (False, "master without slots")),
        (OK, me("myself,slave", ""), "down", (False, "master link down")),
        (OK, me("myself,slave", ""), None, (False, "master link down")),
    ],
)
def test_readiness_reasons(
    info: dict[str, str], line: NodeLine, link: str | None, expected: tuple[bool, str]
) -> None:
    assert readiness(info, line, link) == expected


@given(
    state=st.sampled_from(["ok", "fail", ""]),
    known=st.sampled_from(["1", "3"]),
    replica=st.booleans(),
    slots=st.booleans(),
    link=st.sampled_from([None, "up", "down"]),
)
def test_ready_only_when_ok_and_serving(
    state: str, known: str, replica: bool, slots: bool, link: str | None
) -> None:
    line = me("myself,slave" if replica else "myself,master", "0-100" if slots else "")
    ready, reason = readiness({"cluster_state": state, "cluster_known_nodes": known}, line, link)
    serving = link == "up" if replica else slots
    assert ready is (state == "ok" and serving)
    assert (reason == "ok") is ready


# --- liveness ----------------------------------------------------------------------------------


def state() -> HealthState:
    return HealthState(Metrics())


def test_fresh_state_is_alive() -> None:
    assert state().liveness() == (True, "ok")


def test_a_stale_sidecar_thread_fails_the_sidecars_liveness_not_redis() -> None:
    s = state()
    s.last_turn = time.monotonic() - 31
    alive, reason = s.sidecar_liveness()
    assert not alive and "heal loop" in reason
    assert s.liveness() == (True, "ok")  # Redis is not restarted for the sidecar's sake
    s.turned()
    assert s.sidecar_liveness() == (True, "ok")
    s.last_ping = time.monotonic() - 31
    alive, reason = s.sidecar_liveness()
    assert not alive and "PING check" in reason
    s.ping_turned()
    assert s.sidecar_liveness() == (True, "ok")


def test_stale_threshold_is_configurable() -> None:
    s = HealthState(Metrics(), liveness_stale_seconds=60)
    s.last_turn = time.monotonic() - 30
    assert s.sidecar_liveness()[0]
    s.last_turn = time.monotonic() - 61
    assert not s.sidecar_liveness()[0]


@pytest.mark.parametrize(
    ("timeouts", "alive"), [(0, True), (1, True), (2, True), (3, False), (9, False)]
)
def test_three_ping_timeouts_mean_hung(timeouts: int, alive: bool) -> None:
    s = state()
    s.ping_timeouts = timeouts
    ok, reason = s.liveness()
    assert ok is alive
    assert ("hung" in reason) is (not alive)


# --- respond -----------------------------------------------------------------------------------


def answer(s: HealthState, path: str) -> tuple[int, dict[str, object]]:
    code, content_type, body = respond(s, path)
    assert content_type == "application/json"
    decoded = json.loads(body)
    assert isinstance(decoded, dict)
    return code, decoded


@pytest.mark.parametrize(("startup", "code"), [("pending", 503), ("ok", 200), ("failed", 500)])
def test_startupz(startup: str, code: int) -> None:
    s = state()
    s.startup, s.startup_reason = startup, f"nodes.conf {startup}"
    assert answer(s, "/startupz") == (code, {"status": startup, "reason": f"nodes.conf {startup}"})


def test_readyz_follows_the_state() -> None:
    s = state()
    assert answer(s, "/readyz") == (503, {"reason": "Redis not observed yet"})
    s.ready, s.ready_reason = True, "ok"
    assert answer(s, "/readyz") == (200, {"reason": "ok"})
    assert answer(s, "/readyz?verbose=1") == (200, {"reason": "ok"})


def test_livez_follows_liveness() -> None:
    s = state()
    assert answer(s, "/livez") == (200, {"reason": "ok"})
    s.ping_timeouts = 3
    code, body = answer(s, "/livez")
    assert code == 503 and "hung" in str(body["reason"])
    assert answer(s, "/livez/sidecar") == (200, {"reason": "ok"})
    s.last_ping = time.monotonic() - 60
    assert answer(s, "/livez/sidecar")[0] == 503


def test_node_reports_identity() -> None:
    s = HealthState(
        Metrics(), pod="redis-3", kubernetes_node="worker-2", zone="eu-1b", ip="10.0.0.4"
    )
    s.node_id = "ab" * 20
    assert answer(s, "/node") == (
        200,
        {
            "pod": "redis-3",
            "kubernetes_node": "worker-2",
            "zone": "eu-1b",
            "node_id": "ab" * 20,
            "ip": "10.0.0.4",
            "stopping": False,
        },
    )


def test_metrics_in_prometheus_text_format() -> None:
    s = state()
    s.metrics.cluster_state_ok.set(1)
    s.metrics.heal_meets.inc(2)
    s.metrics.nodes_conf_rewrites.labels("rewritten").set(1)
    code, content_type, body = respond(s, "/metrics")
    text = body.decode()
    assert code == 200 and content_type.startswith("text/plain")
    assert "selfform_cluster_state_ok 1.0" in text.splitlines()
    assert "sidecar_heal_meets_total 2.0" in text.splitlines()
    assert 'sidecar_nodes_conf_fixes{outcome="rewritten"} 1.0' in text.splitlines()


def test_each_state_has_its_own_registry() -> None:
    a, b = state(), state()
    a.metrics.loop_turns.inc()
    assert b"sidecar_loop_turns_total 0.0" in respond(b, "/metrics")[2]


@pytest.mark.parametrize("path", ["/", "/healthz", "/readyz/extra", "/READYZ", ""])
def test_unknown_path_is_404(path: str) -> None:
    code, body = answer(state(), path)
    assert code == 404 and "/readyz" in str(body["reason"])


# --- the real HTTP server ----------------------------------------------------------------------


@pytest.fixture
def served() -> Iterator[tuple[HealthState, str]]:
    s = state()
    server = serve_health(s, "127.0.0.1", 0)
    try:
        yield s, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=5) as reply:  # noqa: S310 - loopback test URL
            return int(reply.status), bytes(reply.read())
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def test_http_server_answers_every_path(served: tuple[HealthState, str]) -> None:
    s, base = served
    assert get(base + "/startupz")[0] == 503
    s.startup = "ok"
    s.ready = True
    assert [get(base + p)[0] for p in ("/startupz", "/readyz", "/livez", "/node", "/nope")] == [
        200,
        200,
        200,
        200,
        404,
    ]
    assert b"selfform_redis_up" in get(base + "/metrics")[1]
