"""Grid configs are strict (mbasr/study/grid_schema.py): an unknown key or a wrong type fails before any
work, naming the file and line that set it; every shipped grid passes."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from mbasr.study.grid import expand_grid
from mbasr.study.grid_schema import GridError, check_grid

ROOT = Path(__file__).resolve().parents[1]
GRIDS = ROOT / "workflow" / "grids"
DEFAULT = (GRIDS / "default.yaml").read_text()


def _bad(tmp_path: Path, old: str, new: str) -> Path:
    assert old in DEFAULT
    path = tmp_path / "grid.yaml"
    path.write_text(DEFAULT.replace(old, new, 1))
    return path


def _line(path: Path, text: str) -> int:
    return next(i for i, line in enumerate(path.read_text().splitlines(), 1) if line.startswith(text))


@pytest.mark.parametrize("name", ["default", "seeds", "paper", "your_domain"])
def test_shipped_grids_pass(name):
    path = GRIDS / f"{name}.yaml"
    check_grid(yaml.safe_load(path.read_text()), [path])


def test_search_section_merged_into_a_grid_passes():
    check_grid(yaml.safe_load(DEFAULT) | yaml.safe_load((GRIDS / "search.yaml").read_text()))


def test_an_unknown_key_names_its_file_and_line(tmp_path):
    path = _bad(tmp_path, "base_steps: 0", "base_stpes: 0")
    with pytest.raises(
        GridError, match=rf"^{path}:{_line(path, 'base_stpes')}: base_stpes: unknown key \(known: "
    ):
        expand_grid(yaml.safe_load(path.read_text()), sources=[path])
    nested = _bad(tmp_path, "  values: [0.2, 0.8]", "  values: [0.2, 0.8]\n  value: 0.5")
    with pytest.raises(
        GridError, match=rf"{nested}:{_line(nested, '  value:')}: tau_t_sweep.value: unknown key"
    ):
        check_grid(yaml.safe_load(nested.read_text()), [nested])


def test_a_wrong_type_names_the_file_that_set_it(tmp_path):
    path = _bad(tmp_path, "steps: 0 ", "steps: many ")
    merged = yaml.safe_load(DEFAULT) | yaml.safe_load(path.read_text())
    # the value comes from the second file: it is the one named, not the default grid beside it
    with pytest.raises(
        GridError, match=rf"{path}:{_line(path, 'steps:')}: steps: 'many' is not of type 'integer'"
    ):
        check_grid(merged, [GRIDS / "default.yaml", path])
    written = _bad(tmp_path, "lr: 0.0", "lr: 1e-4")  # YAML 1.1 reads 1e-4 as a string
    with pytest.raises(GridError, match=r"lr: '1e-4' is not of type 'number'"):
        check_grid(yaml.safe_load(written.read_text()), [written])
    with pytest.raises(GridError, match=r"^grid config: seeds\.1: 'x' is not of type 'integer'"):
        check_grid(yaml.safe_load(DEFAULT) | {"seeds": [0, "x"]})
