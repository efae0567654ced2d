"""Why a run of the Job ends early, each with its own exit code (docs/operations.md)."""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    """Exit codes of `python -m bootstrap`."""

    OK = 0
    UNEXPECTED = 1
    BAD_SETTINGS = 2
    DNS_TIMEOUT = 3
    NODES_TIMEOUT = 4
    REFUSED_UNSAFE = 5
    AUTH_FAILED = 6
    NOT_CONVERGED = 7
    TLS_FAILED = 8


class BootstrapError(Exception):
    """An expected way for the Job to stop; the message says what is wrong and what to do."""

    exit_code = ExitCode.UNEXPECTED
    event = "unexpected_error"


class BadSettings(BootstrapError, ValueError):
    exit_code = ExitCode.BAD_SETTINGS
    event = "bad_settings"


class DnsTimeout(BootstrapError):
    exit_code = ExitCode.DNS_TIMEOUT
    event = "dns_timeout"


class NodesTimeout(BootstrapError):
    exit_code = ExitCode.NODES_TIMEOUT
    event = "nodes_timeout"


class RefusedUnsafe(BootstrapError):
    exit_code = ExitCode.REFUSED_UNSAFE
    event = "refused_unsafe"


class AuthFailed(BootstrapError):
    exit_code = ExitCode.AUTH_FAILED
    event = "auth_failed"


class NotConverged(BootstrapError):
    exit_code = ExitCode.NOT_CONVERGED
    event = "not_converged"


class TlsFailed(BootstrapError):
    exit_code = ExitCode.TLS_FAILED
    event = "tls_failed"
