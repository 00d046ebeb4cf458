"""docs/ holds the protocol in the project's words: code points there, and every pointer
resolves.

Two checks over the comments and string literals (docstrings included) of the package, the
tests and the benches: no citation of the contract documents that live outside the
repository (their name, a section sign, "Part A", a numbered fix such as "B.3 #9"), and
every ``docs/<page>.md#<anchor>`` names an existing page and heading. Links between the
pages and from README.md are checked the same way.
"""

from __future__ import annotations

import io
import re
import tokenize
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
SOURCE_DIRS = ("customer_manager", "tests", "bench")

CITATION = re.compile(
    r"\bSPEC(?:_[A-Z])?\b"  # the document's name
    r"|\u00a7"  # a section sign
    r"|\bPart [A-D]\b"
    r"|\b[A-D]\.\d+(?:\.\d+)*\b"  # a numbered section or fix list: B.3, A.1.2
    r"|\bDESIGN\.md\b|\.\./shared/"
)
CODE_LINK = re.compile(r"\bdocs/([\w.-]+\.md)(?:#([\w-]+))?")
MD_LINK = re.compile(r"\]\(([^)\s]*)\)")
HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
FENCE = re.compile(r"^\s*(```|~~~)")


def slug(heading: str) -> str:
    """The anchor GitHub gives a heading: lowercase, punctuation dropped, spaces to '-'."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def anchors(markdown: str) -> set[str]:
    """Every heading anchor of a page (duplicates get -1, -2, ... as on GitHub)."""
    found: set[str] = set()
    fenced = False
    for line in markdown.splitlines():
        if FENCE.match(line):
            fenced = not fenced
            continue
        match = None if fenced else HEADING.match(line)
        if match:
            base = name = slug(match.group(2))
            count = 0
            while name in found:
                count += 1
                name = f"{base}-{count}"
            found.add(name)
    return found


def prose(source: str) -> Iterator[tuple[int, str]]:
    """(line, text) of every comment and string literal (docstrings included)."""
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type in (tokenize.COMMENT, tokenize.STRING):
            yield token.start[0], token.string


def python_files() -> list[Path]:
    """The sources to scan; this file is left out: its examples must break the rules."""
    here = Path(__file__).resolve()
    return sorted(p for d in SOURCE_DIRS for p in (ROOT / d).rglob("*.py") if p != here)


def resolves(file: Path, anchor: str) -> bool:
    """``file`` exists and has a heading ``anchor`` (if given)."""
    if not file.is_file():
        return False
    return not anchor or (file.suffix == ".md" and anchor in anchors(file.read_text()))


def citations(source: str) -> list[tuple[int, str]]:
    """Lines of comments or strings that cite the outside contract documents."""
    return [(line, m.group(0)) for line, text in prose(source) for m in CITATION.finditer(text)]


def broken_code_links(source: str, docs: Path) -> list[tuple[int, str]]:
    """``docs/<page>.md#<anchor>`` pointers whose page or anchor does not exist."""
    broken = []
    for line, text in prose(source):
        for match in CODE_LINK.finditer(text):
            if not resolves((docs / match.group(1)).resolve(), match.group(2) or ""):
                broken.append((line, match.group(0)))
    return broken


def broken_md_links(page: Path) -> list[str]:
    """Relative links of a markdown page whose target file or anchor does not exist."""
    broken = []
    for target in MD_LINK.findall(page.read_text()):
        if re.match(r"[a-z]+:", target):
            continue  # http:, https:, mailto:
        path, _, anchor = target.partition("#")
        file = (page.parent / path).resolve() if path else page
        if not (file.is_dir() and not anchor) and not resolves(file, anchor):
            broken.append(target)
    return broken


def test_no_comment_or_docstring_cites_the_outside_contract() -> None:
    found = [
        f"{path.relative_to(ROOT)}:{line}: {text!r}"
        for path in python_files()
        for line, text in citations(path.read_text())
    ]
    assert not found, "cite docs/ instead:\n" + "\n".join(found)


def test_every_docs_pointer_in_the_code_resolves() -> None:
    pointers, problems = 0, []
    for path in python_files():
        source = path.read_text()
        pointers += sum(len(CODE_LINK.findall(text)) for _, text in prose(source))
        problems += [
            f"{path.relative_to(ROOT)}:{line}: {link}"
            for line, link in broken_code_links(source, DOCS)
        ]
    assert not problems, "no such page or heading:\n" + "\n".join(problems)
    assert pointers >= 60, f"only {pointers} docs/ pointers: did the scan miss the package?"


@pytest.mark.parametrize(
    "page",
    [*sorted(DOCS.glob("*.md")), ROOT / "README.md"],
    ids=lambda p: str(p.relative_to(ROOT)),
)
def test_links_in_the_docs_resolve(page: Path) -> None:
    assert broken_md_links(page) == []


def test_readme_points_at_docs_not_at_the_outside_contract() -> None:
    readme = (ROOT / "README.md").read_text()
    assert "../shared" not in readme and "SPEC" not in readme
    assert "(docs/README.md)" in readme


def test_the_checks_catch_what_they_are_for(tmp_path: Path) -> None:
    """A citation, a missing page and a missing anchor are each reported; a good pointer
    and plain code are not."""
    (tmp_path / "api.md").write_text("# API\n\n## Customer create\n\n```\n# not a heading\n```\n")
    source = (
        '"""Create a customer (SPEC B.3 #9; see docs/api.md#customer-create)."""\n'
        "x = 1  # Part A \u00a75.1, docs/api.md#not-a-heading and docs/gone.md\n"
        "y = 'B.4'  # docs/api.md\n"
    )
    assert [text for _, text in citations(source)] == ["SPEC", "B.3", "Part A", "\u00a7", "B.4"]
    assert broken_code_links(source, tmp_path) == [
        (2, "docs/api.md#not-a-heading"),
        (2, "docs/gone.md"),
    ]
    assert slug("Access-key list") == "access-key-list"
    assert slug("`customer_outbox`") == "customer_outbox"
    assert anchors("## A\n## A\n") == {"a", "a-1"}
