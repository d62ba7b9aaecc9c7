"""docs/definitions.md, the repository's own binding definitions (no DB: reads the checkout's files, `git ls-files`).

- no text file of the repository sends readers to the folder beside a checkout that only some machines
  have (its specs, seed and notes): a clone elsewhere has none of it;
- the page has a section per registered report naming its fact table and every fact column;
- README.md and each report's `_design.md` link to it, and links into it name headings it has, as do
  the sections the code and docs name in words (`docs/definitions.md, "As known at"`).
"""

import re
import subprocess
from pathlib import Path

import pytest

from dyno_reports.reports import registry

ROOT = Path(__file__).resolve().parent.parent
DEFINITIONS = ROOT / "docs" / "definitions.md"
# Assembled from pieces, so that this file's own text does not match it and the check still covers this file.
_FOLDER = "sha" + "red"
OUTSIDE_REFERENCE = re.compile(r"\.\./" + _FOLDER + r"\b|\b" + _FOLDER + r"/(?:spec|seed|notes)\b")
HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$")
LINK = re.compile(r"\]\(([^)\s]+)\)")
# A section named in words: `definitions.md, "As known at"` or `definitions.md ("The scope digest")`.
NAMED_SECTION = re.compile(r'definitions\.md,?\s*\(?"([^"\n]{1,80})"')


def repository_files() -> list[Path]:
    """Every file git tracks, plus new ones it does not ignore (a file about to be added is checked too)."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout.decode()
    return [ROOT / name for name in sorted(set(listed.split("\0"))) if name and (ROOT / name).is_file()]


def text_of(path: Path) -> str | None:
    """The file's text, or None for a binary file."""
    data = path.read_bytes()
    if b"\0" in data:
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None


def headings(markdown: str) -> list[tuple[int, int, str]]:
    """(line index, level, text) of each heading, outside fenced code blocks."""
    found, fenced = [], False
    for index, line in enumerate(markdown.splitlines()):
        if line.lstrip().startswith("```"):
            fenced = not fenced
        elif not fenced and (match := HEADING.match(line)):
            found.append((index, len(match.group(1)), match.group(2)))
    return found


def section(markdown: str, title: str) -> str | None:
    """The text under the heading whose text (backticks aside) is `title`, down to the next heading of
    the same or a higher level; None when there is no such heading."""
    lines = markdown.splitlines()
    marks = headings(markdown)
    for position, (index, level, text) in enumerate(marks):
        if text.replace("`", "") == title:
            end = next((i for i, lvl, _ in marks[position + 1 :] if lvl <= level), len(lines))
            return "\n".join(lines[index + 1 : end])
    return None


def anchor(heading: str) -> str:
    """GitHub's anchor of a heading: lower case, punctuation but `-` and `_` dropped, spaces as hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-")


def links_to_definitions(path: Path) -> list[str]:
    """The anchors ("" for none) of the relative links in `path` that lead to docs/definitions.md."""
    anchors = []
    for target in LINK.findall(path.read_text(encoding="utf-8")):
        if re.match(r"[a-z][a-z0-9+.-]*:|/", target):  # an address or an absolute path: not relative
            continue
        file_part, _, fragment = target.partition("#")
        leads_there = (path.parent / file_part).resolve() == DEFINITIONS.resolve() if file_part else path == DEFINITIONS
        if leads_there:
            anchors.append(fragment)
    return anchors


def definitions_text() -> str:
    assert DEFINITIONS.is_file(), "docs/definitions.md is missing: the repository carries its own definitions"
    return DEFINITIONS.read_text(encoding="utf-8")


def test_no_file_refers_to_the_folder_outside_the_repository():
    offending = []
    for path in repository_files():
        text = text_of(path)
        for number, line in enumerate((text or "").splitlines(), 1):
            if OUTSIDE_REFERENCE.search(line):
                offending.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert not offending, "refer to docs/definitions.md (or restate the fact) instead:\n" + "\n".join(offending)


def test_the_check_sees_every_form_of_reference_and_spares_other_words():
    folder = _FOLDER
    for reference in (
        f"../{folder}/spec/reports.md",
        f"`{folder}/spec/x.md`",
        f"{folder}/seed/0.txt",
        f"{folder}/notes/",
    ):
        assert OUTSIDE_REFERENCE.search(reference), reference
    for harmless in (f"the {folder} blocks of sql_common.py", f"{folder}/ CTEs", "docs/definitions.md"):
        assert not OUTSIDE_REFERENCE.search(harmless), harmless


def test_this_module_is_among_the_files_checked():
    assert Path(__file__).resolve() in {path.resolve() for path in repository_files()}


@pytest.mark.parametrize("report_type", sorted(registry()))
def test_definitions_have_a_section_naming_the_fact_table_and_every_column(report_type):
    report = registry()[report_type]
    body = section(definitions_text(), report_type)
    assert body is not None, f"docs/definitions.md has no heading `{report_type}`"
    table = f"{report.fact_table.schema}.{report.fact_table.name}"
    assert table in body, f"the {report_type} section does not name {table}"
    missing = [column for column in report.fact_columns if f"`{column}`" not in body]
    assert not missing, f"the {report_type} section does not define {missing}"


@pytest.mark.parametrize(
    "document", ["README.md", *(f"docs/reports/{report_type}_design.md" for report_type in sorted(registry()))]
)
def test_readme_and_design_documents_link_to_the_definitions(document):
    assert links_to_definitions(ROOT / document), f"{document} has no relative link to docs/definitions.md"


def test_every_link_into_the_definitions_names_one_of_its_headings():
    known = {anchor(text) for _, _, text in headings(definitions_text())}
    broken = [
        f"{path.relative_to(ROOT)}: #{fragment}"
        for path in repository_files()
        if path.suffix == ".md"
        for fragment in links_to_definitions(path)
        if fragment and fragment not in known
    ]
    assert not broken, f"links to headings docs/definitions.md does not have: {broken}"


def test_every_section_named_in_words_is_a_heading_of_the_definitions():
    titles = {text.replace("`", "") for _, _, text in headings(definitions_text())}
    named = [
        (path.relative_to(ROOT), title)
        for path in repository_files()
        if path.suffix in {".py", ".md", ".sql"}
        for title in NAMED_SECTION.findall(text_of(path) or "")
    ]
    assert any(title == "The scope digest" for _, title in named), "the check no longer finds the code's references"
    missing = [f"{path}: {title!r}" for path, title in named if title not in titles]
    assert not missing, f"sections docs/definitions.md does not have: {missing}"
