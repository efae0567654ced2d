"""clusterkit.io.settings: the settings core both programs compose, and the exit code 2 that every
kind of bad input ends in (never a traceback)."""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Mapping, Sequence
from contextlib import redirect_stdout
from dataclasses import dataclass, fields
from pathlib import Path

import pytest

import bootstrap.__main__
import sidecar.__main__
from bootstrap.errors import ExitCode as JobExit
from bootstrap.settings import Settings
from clusterkit.io.settings import ClusterSettings, SettingsError, leaf_fields, parse_settings
from sidecar.exitcodes import ExitCode as SidecarExit
from sidecar.settings import SidecarSettings

JOB_ENV = {"STATEFULSET_NAME": "redis", "HEADLESS_SERVICE": "redis-hl", "CLUSTER_SIZE": "6"}
SIDECAR_ENV = {
    "STATEFULSET_NAME": "redis",
    "HEADLESS_SERVICE": "redis-hl",
    "POD_IP": "127.0.0.1",
    "POD_NAME": "redis-0",
}


@dataclass(frozen=True)
class Program:
    cluster: ClusterSettings
    """The shared part."""
    size: int
    """SIZE."""
    ratio: float = 1.5
    """RATIO."""


def test_both_programs_compose_the_one_shared_dataclass() -> None:
    shared = {f.name for f in fields(ClusterSettings)}
    for program in (Settings, SidecarSettings):
        own = {f.name for f in fields(program)}
        assert "cluster" in own
        assert not own & shared, f"{program.__name__} repeats shared fields"
        assert shared <= set(leaf_fields(program))


def test_every_shared_field_has_a_docstring_naming_its_variable() -> None:
    source = Path("clusterkit/io/settings.py").read_text()
    for field in fields(ClusterSettings):
        assert f'"""{field.name.upper()}:' in source, field.name


def test_nested_settings_read_flags_and_variables_into_their_own_dataclass() -> None:
    env = {"STATEFULSET_NAME": "s", "HEADLESS_SERVICE": "h", "SIZE": "3"}
    program = parse_settings(Program, ["--ratio", "2.5", "--redis-port", "7000"], env, prog="p")
    assert program == Program(ClusterSettings("s", "h", redis_port=7000), 3, 2.5)


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"SIZE": "3.0"}, "SIZE='3.0' is not a whole number"),
        ({"RATIO": "nan"}, "RATIO='nan' is not a number"),
        ({"RATIO": "inf"}, "RATIO='inf' is not a number"),
        ({"LOG_LEVEL": "chatty"}, "LOG_LEVEL='chatty' must be one of DEBUG, INFO"),
        ({"REDIS_PORT": "65535"}, "REDIS_PORT=65535 must be 1..55535"),
        ({"DNS_NAMESERVER": "1.2.3.4:0"}, "DNS_NAMESERVER"),
        ({"STATEFULSET_NAME": " "}, "STATEFULSET_NAME must not be blank"),
    ],
)
def test_bad_input_names_the_variable(env: dict[str, str], message: str) -> None:
    base = {"STATEFULSET_NAME": "s", "HEADLESS_SERVICE": "h", "SIZE": "3"}
    with pytest.raises(SettingsError, match="^" + message.replace(".", r"\.")):
        parse_settings(Program, [], {**base, **env}, prog="p")


def test_missing_required_settings_are_all_named() -> None:
    with pytest.raises(SettingsError, match="missing: STATEFULSET_NAME, HEADLESS_SERVICE, SIZE"):
        parse_settings(Program, [], {}, prog="p")


def test_log_level_is_case_insensitive() -> None:
    s = ClusterSettings("s", "h", log_level="debug")
    assert s.log_level == "DEBUG"


def run_main(
    main: Callable[[Sequence[str], Mapping[str, str]], int], env: Mapping[str, str]
) -> tuple[int, list[dict[str, object]]]:
    out = io.StringIO()
    with redirect_stdout(out):
        code = main([], env)
    events = [json.loads(line) for line in out.getvalue().splitlines() if line.startswith("{")]
    return code, events


BAD_INPUTS = [
    ({"LOG_LEVEL": "LOUD"}, "LOG_LEVEL"),
    ({"REDIS_PORT": "port"}, "REDIS_PORT"),
    ({"DNS_NAMESERVER": "[::1"}, "DNS_NAMESERVER"),
]


PROGRAMS = [
    pytest.param(bootstrap.__main__.main, JOB_ENV, JobExit.BAD_SETTINGS, id="job"),
    pytest.param(sidecar.__main__.main, SIDECAR_ENV, SidecarExit.BAD_SETTINGS, id="sidecar"),
]


@pytest.mark.parametrize(("env", "variable"), BAD_INPUTS)
@pytest.mark.parametrize(("main", "required", "bad_settings"), PROGRAMS)
def test_each_program_exits_2_naming_the_variable(
    env: dict[str, str],
    variable: str,
    main: Callable[[Sequence[str], Mapping[str, str]], int],
    required: dict[str, str],
    bad_settings: int,
) -> None:
    code, events = run_main(main, {**required, **env})
    assert code == bad_settings
    assert int(bad_settings) == 2
    assert events[-1]["event"] == "bad_settings"
    assert variable in str(events[-1]["error"])
