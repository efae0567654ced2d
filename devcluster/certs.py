"""A CA and certificates for `devcluster up --tls`, made with the `openssl` command (what the
the openssl recipe in docs/security.md does for a real cluster), in cert-manager's layout: a
directory with tls.crt, tls.key and ca.crt."""

from __future__ import annotations

import subprocess
from pathlib import Path

DAYS = 30
NEW_EC_KEY = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes")
"""A new EC P-256 key (quick to make), unencrypted: the Secret's tls.key is too."""


def openssl(*args: str, cwd: Path) -> None:
    result = subprocess.run(
        ["openssl", *args], cwd=cwd, capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        raise RuntimeError(f"openssl {args[0]} failed: {result.stderr.strip()}")


def make_ca(directory: Path, name: str = "devcluster CA") -> Path:
    """A self-signed CA (EC P-256: quick to make); returns ca.crt (ca.key beside it)."""
    directory.mkdir(parents=True, exist_ok=True)
    openssl(
        "req",
        "-x509",
        *NEW_EC_KEY,
        "-keyout",
        "ca.key",
        "-out",
        "ca.crt",
        "-days",
        str(DAYS),
        "-subj",
        f"/CN={name}",
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign,cRLSign",
        cwd=directory,
    )
    (directory / "ca.key").chmod(0o600)
    return directory / "ca.crt"


def issue(ca_dir: Path, directory: Path, names: list[str], common_name: str) -> Path:
    """tls.crt and tls.key for `names` (DNS names) signed by the CA in `ca_dir`, usable as a
    server and as a client certificate (Redis presents it both ways), plus ca.crt; returns
    `directory`."""
    directory.mkdir(parents=True, exist_ok=True)
    san = ",".join(f"DNS:{n}" for n in names)
    extensions = directory / "ext.cnf"
    extensions.write_text(
        f"subjectAltName={san}\n"
        "keyUsage=critical,digitalSignature,keyEncipherment\n"
        "extendedKeyUsage=serverAuth,clientAuth\n"
    )
    openssl(
        "req",
        *NEW_EC_KEY,
        "-keyout",
        "tls.key",
        "-out",
        "tls.csr",
        "-subj",
        f"/CN={common_name}",
        cwd=directory,
    )
    openssl(
        "x509",
        "-req",
        "-in",
        "tls.csr",
        "-CA",
        str(ca_dir / "ca.crt"),
        "-CAkey",
        str(ca_dir / "ca.key"),
        "-CAcreateserial",
        "-out",
        "tls.crt",
        "-days",
        str(DAYS),
        "-extfile",
        str(extensions),
        cwd=directory,
    )
    (directory / "tls.key").chmod(0o600)
    (directory / "ca.crt").write_bytes((ca_dir / "ca.crt").read_bytes())
    for scratch in ("tls.csr", "ext.cnf"):
        (directory / scratch).unlink()
    return directory
