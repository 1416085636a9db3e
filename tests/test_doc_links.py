"""Every relative link in the repository's markdown points at a file that exists and, with an anchor, at a
heading that file has: the docs cross-reference each other's measurements by anchor, and a renamed heading
would otherwise leave a reader at the top of a long page."""

from __future__ import annotations

import functools
import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)\)")
FENCE = re.compile(r"^\s*(```|~~~)")


def markdown_files() -> list[Path]:
    """The repository's markdown: what git tracks, or (in a copy without git) every file outside hidden folders."""
    try:
        listed = subprocess.run(
            ["git", "ls-files", "*.md"], cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout.split()
    except (OSError, subprocess.CalledProcessError):
        return sorted(
            path
            for path in ROOT.rglob("*.md")
            if not any(part.startswith(".") for part in path.relative_to(ROOT).parts)
        )
    return [ROOT / name for name in listed]


def prose_lines(path: Path) -> list[tuple[int, str]]:
    """The file's lines outside fenced code blocks, numbered from 1."""
    lines, fenced = [], False
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if FENCE.match(line):
            fenced = not fenced
        elif not fenced:
            lines.append((number, line))
    return lines


def heading_anchor(heading: str) -> str:
    """GitHub's anchor of a heading: lower case, inline code marks and punctuation dropped, spaces to hyphens."""
    text = heading.strip().lower().replace("`", "")
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


@functools.cache
def anchors_of(path: Path) -> set[str]:
    """Every heading anchor of a markdown file; repeated headings get GitHub's -1, -2 suffixes."""
    seen: dict[str, int] = {}
    anchors = set()
    for _, line in prose_lines(path):
        match = re.match(r"^#{1,6}\s+(.*?)\s*#*\s*$", line)
        if not match:
            continue
        anchor = heading_anchor(match.group(1))
        count = seen.get(anchor, 0)
        anchors.add(anchor if count == 0 else f"{anchor}-{count}")
        seen[anchor] = count + 1
    return anchors


def broken_links(path: Path, root: Path = ROOT) -> list[str]:
    """``file:line: target (why)`` (paths relative to ``root``) for each relative link of ``path`` that does not
    resolve. Link text may wrap onto the next line, as the docs wrap at 120 columns."""
    numbered = prose_lines(path)
    text = "\n".join(re.sub(r"`[^`\n]*`", "", line) for _, line in numbered)
    problems = []
    for match in LINK.finditer(text):
        target = match.group(1)
        if re.match(r"^[a-z][a-z0-9+.-]*:", target):  # http:, https:, mailto: ...
            continue
        number = numbered[text.count("\n", 0, match.start())][0]
        file_part, _, anchor = target.partition("#")
        linked = (path.parent / file_part).resolve() if file_part else path
        where = f"{path.relative_to(root)}:{number}: {target}"
        if not linked.is_relative_to(root):
            problems.append(f"{where} (leaves the repository: a reader of the docs does not have it)")
        elif not linked.exists():
            problems.append(f"{where} (no such file)")
        elif anchor and linked.suffix == ".md" and anchor not in anchors_of(linked):
            problems.append(f"{where} (no such heading in {linked.relative_to(root)})")
    return problems


def test_heading_anchors_follow_github() -> None:
    assert heading_anchor("`--background`: people who never come to the site") == (
        "--background-people-who-never-come-to-the-site"
    )
    assert heading_anchor("What decides FAR 1 % (validation)") == "what-decides-far-1--validation"


def test_the_checker_finds_a_broken_link(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text(
        "# Title\n\n[fine](#title) [gone](#nowhere)\n[wrapped\nlink](other.md) [out](../shared/README.md)\n"
        "```\n[code](x.md)\n```\n"
    )
    assert broken_links(page, root=tmp_path) == [
        "page.md:3: #nowhere (no such heading in page.md)",
        "page.md:4: other.md (no such file)",
        "page.md:5: ../shared/README.md (leaves the repository: a reader of the docs does not have it)",
    ]


@pytest.mark.parametrize("path", markdown_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_resolve(path: Path) -> None:
    assert broken_links(path) == []
