"""docs/settings.md is what devcluster.settingsdoc renders, and every setting documents itself."""

from __future__ import annotations

import re
from typing import Any

import pytest

from devcluster import settingsdoc


def test_settings_doc_is_current() -> None:
    current = settingsdoc.DOC_PATH.read_text() if settingsdoc.DOC_PATH.exists() else ""
    assert current == settingsdoc.render(), "docs/settings.md is stale: run make settings-doc"


@pytest.mark.parametrize(
    "settings_class", [section[1] for section in settingsdoc.SECTIONS], ids=lambda c: c.__name__
)
def test_every_variable_has_a_docstring_naming_it(settings_class: type[Any]) -> None:
    docs = settingsdoc.field_docstrings(settings_class)
    fields = settingsdoc.variables(settings_class)
    assert fields
    for field in fields:
        doc = docs.get(field.name, "")
        assert re.match(r"[A-Z][A-Z0-9_]*: \S", doc), f"{field.name}: {doc!r}"
        assert doc.startswith(f"{field.name.upper()}: "), f"{field.name}: {doc!r}"
