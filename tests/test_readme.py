"""The manual renders, and documents what the code has."""

from __future__ import annotations

import dataclasses
import io
from pathlib import Path

from readme_renderer.rst import render

from tus_filter.config import Settings

README = Path(__file__).parent.parent / "README.rst"


def test_readme_renders_without_warnings() -> None:
    messages = io.StringIO()
    html = render(README.read_text(encoding="utf-8"), stream=messages)
    assert html is not None, messages.getvalue()
    assert messages.getvalue() == ""


def test_every_option_is_documented() -> None:
    text = README.read_text(encoding="utf-8")
    options = text[text.index("Options\n-------") : text.index("The hand-off contract")]
    for field in dataclasses.fields(Settings):
        assert f"``{field.name}``" in options, field.name


def test_quick_start_shows_the_ci_command() -> None:
    ci = (README.parent / ".ci" / "run").read_text()
    assert "make test" in ci
    quick_start = README.read_text()[: README.read_text().index("What it is\n")]
    assert "    make test\n" in quick_start
    assert "    make demo\n" in quick_start
