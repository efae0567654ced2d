"""The images carry the product only: what `pip install .` installs, what the Dockerfiles copy."""

from __future__ import annotations

import re
import subprocess
import sys
import zipfile
from email.parser import Parser
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PRODUCT = {"clusterkit", "bootstrap", "sidecar"}
RUNTIME = {"redis", "dnspython", "tenacity", "structlog", "prometheus-client"}


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> zipfile.ZipFile:
    """The wheel `pip install .` would install, built from this checkout."""
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [
            *(sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q"),
            *("--wheel-dir", str(out), str(ROOT)),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    return zipfile.ZipFile(next(out.glob("*.whl")))


def test_the_wheel_holds_the_product_packages_only(wheel: zipfile.ZipFile) -> None:
    top = {name.split("/")[0] for name in wheel.namelist() if ".dist-info" not in name}
    assert top == PRODUCT


def test_installing_without_extras_pulls_the_runtime_dependencies_only(
    wheel: zipfile.ZipFile,
) -> None:
    meta_name = next(n for n in wheel.namelist() if n.endswith(".dist-info/METADATA"))
    metadata = Parser().parsestr(wheel.read(meta_name).decode())
    requires = metadata.get_all("Requires-Dist") or []
    unconditional = {
        re.split(r"[\s<>=!~;\[(]", req, maxsplit=1)[0].lower()
        for req in requires
        if "extra ==" not in req
    }
    assert unconditional == RUNTIME
    assert any("pyyaml" in req.lower() and 'extra == "dev"' in req for req in requires)


@pytest.mark.parametrize("dockerfile", ["Dockerfile.init", "Dockerfile.sidecar"])
def test_the_dockerfiles_copy_the_product_only(dockerfile: str) -> None:
    copies = [
        line.split()[1:-1]
        for line in (ROOT / dockerfile).read_text().splitlines()
        if line.startswith("COPY ") and "--from=" not in line
    ]
    sources = {source for sources in copies for source in sources}
    assert sources == {"pyproject.toml", "README.md", *PRODUCT}
    assert "extra" not in (ROOT / dockerfile).read_text()
