"""How the programs reach Redis: as which ACL user, with which password, over TLS or not.

TLS is mutual (Redis runs with tls-auth-clients yes): our client presents its certificate, and
checks the server's against the CA and against the name it must carry, the pod's FQDN, even
though it connects to an IP it resolved itself. A renewed certificate in the mounted Secret is
used from the next connection on (the files are checked on every connect; they are small).
"""

from __future__ import annotations

import os
import ssl
import threading
from dataclasses import dataclass, field
from pathlib import Path

import redis


class TlsError(redis.ConnectionError):
    """A TLS handshake failed for a reason retrying does not fix (a wrong CA, a certificate
    without the expected name, an unreadable key); the message says what to check."""


@dataclass(frozen=True)
class TlsFiles:
    """The certificate files in cert-manager's layout (tls.crt, tls.key, ca.crt)."""

    ca_file: Path
    cert_file: Path
    key_file: Path

    def fingerprint(self) -> tuple[tuple[int, int, int], ...]:
        """Changes when any file is replaced (a Secret update swaps a symlink: new inode)."""
        stats = [os.stat(p) for p in (self.ca_file, self.cert_file, self.key_file)]
        return tuple((s.st_ino, s.st_mtime_ns, s.st_size) for s in stats)


@dataclass
class TlsClient:
    """One SSL context for every connection, rebuilt when the files change."""

    files: TlsFiles
    _cached: tuple[object, ssl.SSLContext] | None = field(default=None, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def context(self) -> ssl.SSLContext:
        try:
            key = self.files.fingerprint()
        except OSError as exc:
            raise TlsError(f"TLS files cannot be read ({exc}); mount the TLS Secret") from None
        with self._lock:
            if self._cached is None or self._cached[0] != key:
                self._cached = (key, self.build())
            return self._cached[1]

    def build(self) -> ssl.SSLContext:
        context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        try:
            context.load_verify_locations(cafile=str(self.files.ca_file))
            context.load_cert_chain(str(self.files.cert_file), str(self.files.key_file))
        except (OSError, ssl.SSLError) as exc:
            raise TlsError(
                f"TLS files {self.files.cert_file}, {self.files.key_file} (CA"
                f" {self.files.ca_file}) cannot be loaded: {exc}. Check the TLS Secret holds"
                " tls.crt, tls.key and ca.crt in PEM"
            ) from None
        return context


@dataclass(frozen=True)
class Access:
    """Credentials and transport for every connection a program makes."""

    password: str | None = None
    """Every byte of the password file (non-UTF-8 bytes kept as surrogates); None: no AUTH."""
    username: str | None = None
    """The ACL user; None is Redis's `default` user (the single-password layout)."""
    tls: TlsClient | None = None
    """Set when Redis serves TLS only."""

    def auth_args(self) -> tuple[str, ...]:
        """MIGRATE's authentication to the target, as this same user."""
        if self.password is None:
            return ()
        if self.username is None:
            return ("AUTH", self.password)
        return ("AUTH2", self.username, self.password)

    @property
    def who(self) -> str:
        return f"user {self.username!r}" if self.username else "the default user"


NO_ACCESS = Access()
"""No password, no TLS (a test server or a fresh node before its include)."""


def explain_tls_failure(exc: BaseException, server_name: str) -> str | None:
    """Why a handshake with `server_name` failed, when retrying will not help; None when the
    failure looks like a network one (a reset, a timeout) and a retry may."""
    for cause in _chain(exc):
        if isinstance(cause, ssl.SSLCertVerificationError):
            return (
                f"the certificate of {server_name} failed verification"
                f" ({cause.verify_message}): check that TLS_CA_FILE is the CA that signed"
                f" Redis's certificates and that they name {server_name}"
            )
        if isinstance(cause, ssl.SSLError) and cause.reason in FATAL_SSL_REASONS:
            return (
                f"TLS with {server_name} failed ({cause.reason}): the server refused our"
                " client certificate or does not speak TLS. Check that TLS_CERT_FILE is signed"
                " by the CA Redis trusts (tls-ca-cert-file) and that Redis serves TLS on this"
                " port"
            )
        if isinstance(cause, TlsError):
            return str(cause)
    return None


FATAL_SSL_REASONS = frozenset(
    {
        "TLSV1_ALERT_UNKNOWN_CA",
        "SSLV3_ALERT_BAD_CERTIFICATE",
        "SSLV3_ALERT_CERTIFICATE_UNKNOWN",
        "TLSV13_ALERT_CERTIFICATE_REQUIRED",
        "WRONG_VERSION_NUMBER",
        "CERTIFICATE_VERIFY_FAILED",
    }
)


def _chain(exc: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in seen:
        seen.append(current)
        current = current.__cause__ or current.__context__
    return seen
