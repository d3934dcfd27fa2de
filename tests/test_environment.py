"""environment.yml (conda) and pyproject.toml (pip) must name the same Python dependencies."""

import re
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
# conda-forge names that differ from PyPI's
CONDA_TO_PYPI = {"pytorch": "torch", "pysoundfile": "soundfile"}
SYSTEM_ONLY = {"python", "pip", "espeak-ng", "flite", "quarto"}


def _name(spec: str) -> str:
    return re.split(r"[<>=!~ \[]", spec.strip(), maxsplit=1)[0].lower()


def _pins(spec: str) -> str:
    return spec.strip().split("#")[0].replace(" ", "").replace("==", "=")


def test_environment_matches_pyproject():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    pyproject = list(project["dependencies"])
    for extra in project["optional-dependencies"].values():
        pyproject += extra
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    conda, pip = [], []
    for dep in env["dependencies"]:
        if isinstance(dep, dict):
            pip += [d for d in dep["pip"] if not d.startswith("-e")]
        else:
            conda.append(dep)
    named = {}
    for spec in conda + pip:
        name = CONDA_TO_PYPI.get(_name(spec), _name(spec))
        if name not in SYSTEM_ONLY:
            named[name] = _pins(spec)[len(_name(spec)) :]
    want = {_name(s): _pins(s)[len(_name(s)) :] for s in pyproject}
    assert set(named) == set(want), (
        f"only in environment.yml: {set(named) - set(want)}; only in pyproject: {set(want) - set(named)}"
    )
    for name, pin in want.items():
        assert named[name] == pin, f"{name}: pyproject pins {pin!r}, environment.yml {named[name]!r}"
