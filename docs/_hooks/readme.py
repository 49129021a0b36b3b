"""MkDocs hook: the commands of README.md, shown in the docs without a second copy.

A page line ``<!-- readme-code: Two commands -->`` becomes the fenced code
blocks of the README section with that heading, verbatim, so the getting
started page and the README (whose commands CI runs) always agree. The build
fails when the section is gone or holds no code.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from mkdocs.exceptions import PluginError

_MARKER = re.compile(r"^<!-- readme-code: *(?P<heading>.+?) *-->[ \t]*$", re.MULTILINE)
_HEADING = re.compile(r"^(?P<level>#{1,6}) +(?P<title>.+?) *#*$")
_FENCE = re.compile(r"^(?P<fence>`{3,}|~{3,})")


def _readme(config: Any) -> Path:
    return Path(config["config_file_path"]).resolve().parent / "README.md"


def _section_code(readme: str, heading: str) -> list[str]:
    """The fenced blocks of the section titled ``heading`` (up to the next heading)."""
    blocks: list[str] = []
    level = 0
    inside = False
    fence = ""
    current: list[str] = []
    for line in readme.splitlines():
        if fence:
            current.append(line)
            if line.startswith(fence) and not line[len(fence) :].strip():
                if inside:
                    blocks.append("\n".join(current))
                fence, current = "", []
            continue
        opening = _FENCE.match(line)
        if opening:
            fence, current = opening["fence"], [line]
            continue
        found = _HEADING.match(line)
        if found:
            if inside and len(found["level"]) <= level:
                break
            if found["title"] == heading:
                inside, level = True, len(found["level"])
    if not inside:
        raise PluginError(
            f"README.md has no section '{heading}': fix the docs page that asks for it"
        )
    if not blocks:
        raise PluginError(f"README.md's section '{heading}' holds no code block")
    return blocks


def on_config(config: Any, **kwargs: Any) -> Any:
    config.watch.append(str(_readme(config)))
    return config


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:
    if not _MARKER.search(markdown):
        return markdown
    readme = _readme(config).read_text(encoding="utf-8")
    return _MARKER.sub(lambda m: "\n\n".join(_section_code(readme, m["heading"])), markdown)
