"""Metadata a package index shows: project URLs from one repository, README images that render there.

PyPI renders README.md without the repository around it, so a relative image would be
broken; every image is the raw file of the canonical repository's main branch, and that
file must exist here. The URLs are read from the tree's pyproject.toml (the sdist ships it).
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _project_urls() -> dict[str, str]:
    """``[project.urls]`` of pyproject.toml (a flat table of strings; tomllib is 3.11+ only)."""
    text = (ROOT / "pyproject.toml").read_text()
    table = re.search(r"^\[project\.urls\]\n(.*?)(?=^\[|\Z)", text, re.M | re.S).group(1)
    return dict(re.findall(r'^(\w+) = "([^"]+)"$', table, re.M))


def test_project_urls_all_derive_from_the_repository():
    urls = _project_urls()
    repository = urls["Repository"]

    assert re.fullmatch(r"https://github\.com/[\w.-]+/[\w.-]+", repository)
    assert set(urls) == {"Repository", "Homepage", "Documentation", "Issues", "Changelog"}
    assert all(url == repository or url.startswith((repository + "/", repository + "#")) for url in urls.values())
    assert urls["Issues"] == repository + "/issues"
    changelog = urls["Changelog"].removeprefix(repository + "/blob/main/")
    assert (ROOT / changelog).is_file()


def test_readme_images_are_raw_files_of_the_repository():
    readme = (ROOT / "README.md").read_text()
    owner_name = _project_urls()["Repository"].removeprefix("https://github.com/")
    raw = f"https://raw.githubusercontent.com/{owner_name}/main/"

    images = re.findall(r"!\[[^\]]*\]\(([^)\s]+)\)", readme) + re.findall(r'<img[^>]+src="([^"]+)"', readme)
    assert len(images) >= 2
    for image in images:
        assert image.startswith(raw), image
        assert (ROOT / image.removeprefix(raw)).is_file(), image
