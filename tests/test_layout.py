"""README.md's layout table and its map of the paper's artefacts stay true: every path exists, every
subpackage is listed, and each figure and claim names notebooks, a workflow rule and a function that
exist (the function's docstring says which artefact it makes)."""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def _section(title: str) -> str:
    start = README.index(title)
    end = README.find("\n#", start + len(title))
    return README[start : end if end > 0 else None]


def _rows(text: str) -> list[list[str]]:
    rows = [line.strip().strip("|").split("|") for line in text.splitlines() if line.startswith("| ")]
    return [[c.strip() for c in r] for r in rows[1:] if not set("".join(r)) <= set("- ")]


def test_every_layout_path_exists_and_every_subpackage_is_listed():
    rows = _rows(_section("## Layout\n"))
    paths = [p for r in rows for p in re.findall(r"`([^`]+)`", r[0])]
    assert paths
    for p in paths:
        assert (ROOT / p).exists(), f"README layout names {p}, which does not exist"
    listed = {p.rstrip("/") for p in paths}
    for pkg in sorted((ROOT / "mbasr").iterdir()):
        if pkg.is_dir() and (pkg / "__init__.py").exists():
            assert f"mbasr/{pkg.name}" in listed, f"mbasr/{pkg.name}/ is missing from README's layout table"


ARTEFACTS = _rows(_section("### Where each of the paper's artefacts is made"))


def test_the_artefact_map_covers_every_figure_and_claim():
    names = [re.match(r"(Figure|Claim) \d", r[0]).group(0) for r in ARTEFACTS]
    assert names == [f"Figure {n}" for n in range(1, 6)] + [f"Claim {n}" for n in range(1, 6)]


@pytest.mark.parametrize("row", ARTEFACTS, ids=[r[0].split(":")[0] for r in ARTEFACTS])
def test_each_artefact_names_real_notebooks_rule_and_function(row):
    artefact, notebooks, rule, function = row
    snakefile = (ROOT / "workflow" / "Snakefile").read_text()
    for nb in re.findall(r"`([^`]+)`", notebooks):
        assert (ROOT / "notebooks" / f"{nb}.ipynb").exists(), nb
    assert re.search(rf"^rule {rule.strip('`')}:", snakefile, re.M), rule
    module, name = function.strip("`").rsplit(".", 1)
    fn = getattr(importlib.import_module(module), name)
    assert re.match(r"(Figure|Claim) \d", artefact).group(0) in fn.__doc__, (function, artefact)
