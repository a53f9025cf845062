"""The README and docs/ stand alone: a county that clones Gridwork can follow every link."""

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
PAGES = [ROOT / "README.md", *sorted(DOCS.glob("*.md"))]
# Where text a reader or contributor follows lives (not .venv, var/ or the git directory).
SOURCES = (
    *("README.md", "Makefile", "Dockerfile", "docker-compose.yml", "pyproject.toml"),
    *("docs", "services", "gridwork_common", "devstack", "deploy", "tests", "bench"),
)
TEXT_SUFFIXES = {".md", ".py", ".yml", ".yaml", ".toml", ".sh", ".txt", ".cfg", ".ini"}
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
HEADING = re.compile(r"^#{1,6}\s+(.*?)\s*$", re.M)
README_MAX_LINES = 200  # an introduction; the manual is docs/
# Environment variables read outside Settings: os.environ.get("X"), environ["X"], setdefault.
ENVIRON_READ = re.compile(r"environ(?:\.get|\.setdefault)?[(\[]\s*[\"']([A-Z][A-Z0-9_]+)[\"']")


def _links(page: Path) -> list[str]:
    text = re.sub(r"```.*?```", "", page.read_text(), flags=re.S)  # code blocks hold no links
    return [target for target in LINK.findall(text) if not re.match(r"[a-z]+:", target)]


def _anchor(heading: str) -> str:
    """GitHub's anchor of a heading: lower case, punctuation dropped, spaces as hyphens."""
    text = re.sub(r"[`*_]", "", heading).strip().lower()
    return re.sub(r"\s", "-", re.sub(r"[^\w\s-]", "", text))


def _repository_text_files():
    for name in SOURCES:
        path = ROOT / name
        files = [path] if path.is_file() else path.rglob("*")
        for file in files:
            readable = file.suffix in TEXT_SUFFIXES or file.name in SOURCES
            if file.is_file() and readable and "__pycache__" not in file.parts:
                yield file


def test_nothing_points_outside_the_repository():
    outside = "../" + "shared"  # spelt in two parts so this file does not match itself
    found = [
        str(file.relative_to(ROOT))
        for file in _repository_text_files()
        if outside in file.read_text(errors="replace")
    ]
    assert not found, f"{found} refer to {outside}/, which a county's clone does not have"


@pytest.mark.parametrize("page", PAGES, ids=lambda page: str(page.relative_to(ROOT)))
def test_every_link_leads_to_a_file_of_the_repository_and_its_heading(page):
    broken = []
    for target in _links(page):
        path, _, anchor = target.partition("#")
        linked = (page.parent / path).resolve() if path else page
        if not linked.is_file() or ROOT not in linked.parents:
            broken.append(target)
        elif anchor and linked.suffix == ".md":
            anchors = {_anchor(h) for h in HEADING.findall(linked.read_text())}
            if anchor not in anchors:
                broken.append(target)
    assert not broken, f"{page.relative_to(ROOT)}: links lead nowhere: {broken}"


def test_the_docs_index_lists_every_page():
    index = DOCS / "README.md"
    listed = {(DOCS / target.partition("#")[0]).resolve() for target in _links(index)}
    missing = [page.name for page in DOCS.glob("*.md") if page != index and page not in listed]
    assert not missing, f"docs/README.md does not list {missing}"


def test_the_readme_is_an_introduction_and_points_to_the_manual():
    readme = (ROOT / "README.md").read_text()
    assert len(readme.splitlines()) <= README_MAX_LINES, "move details into docs/ pages"
    for needed in ("make up", "make test", "gridwork-demo-2026", "docs/README.md"):
        assert needed in readme


def test_every_environment_variable_the_code_reads_is_in_the_configuration_page():
    from gridwork_common.config import ENVIRONMENT_VARIABLES

    read = set(ENVIRONMENT_VARIABLES)
    for package in ("services", "gridwork_common", "devstack"):
        for module in (ROOT / package).rglob("*.py"):
            read.update(ENVIRON_READ.findall(module.read_text()))
    page = (DOCS / "configuration.md").read_text()
    missing = sorted(name for name in read if f"`{name}`" not in page)
    assert not missing, f"docs/configuration.md does not document {missing}"
