"""Parameter checks of the run entry points (`base_model`, `load_base`, `adapt`) and of the notebooks'
parameters, made before any corpus, feature-cache or training work: a bad value fails in a second,
naming the parameter as the caller set it and what it may be.

    check_base(preset="tiny", work_dir="runs", seed=0, scale="micro", source_domain="source", steps=None)
    values = notebook_params(globals())   # in a notebook: its declared parameters, checked (see below)

A notebook declares its parameters with annotations in the cell tagged `parameters` (`steps: int = 0`).
`notebook_params` checks each value against its annotation, and fails on a name papermill injected that
the notebook does not declare (`papermill nb.ipynb out.ipynb -p stpes 10`: papermill itself only warns),
found in the kernel's input history as the cell papermill adds (its first line is `# Parameters`).
"""

from __future__ import annotations

import ast
import json
import math
from pathlib import Path
from typing import Any

from mbasr.config import DEFAULT_STAGE0, ConfigError, load_preset
from mbasr.data import domains
from mbasr.data.corpus import DOMAINS, SCALES
from mbasr.vocab import STRATEGIES

INJECTED_HEADER = "# Parameters"  # the first line of the cell papermill injects (its python translator)


class ParamError(ValueError):
    """A parameter that cannot be used; the message names it."""


def _fail(name: str, value: Any, msg: str) -> None:
    raise ParamError(f"{name}={value!r}: {msg}")


def integer(name: str, value: Any, minimum: int | None = None, optional: bool = False) -> None:
    if value is None and optional:
        return
    if isinstance(value, bool) or not isinstance(value, int):
        _fail(name, value, "must be an integer" + (" or None" if optional else ""))
    if minimum is not None and value < minimum:
        _fail(name, value, f"must be >= {minimum}")


def number(
    name: str, value: Any, low: float, high: float = math.inf, *, open_low=False, open_high=False, hint=""
) -> None:
    """A finite number in [low, high] (an end excluded when `open_...`)."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        _fail(name, value, "must be a finite number")
    if value < low or (open_low and value == low) or value > high or (open_high and value == high):
        span = f"{'(' if open_low else '['}{low:g}, {high:g}{')' if open_high else ']'}"
        _fail(name, value, f"must lie in {span}{hint}")


def _kind(name: str, value: Any, types: tuple[type, ...], what: str) -> None:
    if not isinstance(value, types) or isinstance(value, bool) and bool not in types:
        _fail(name, value, f"must be {what}")


def check_base(
    preset: Any = "tiny",
    work_dir: Any = "runs",
    seed: Any = 0,
    scale: Any = "default",
    source_domain: Any = "source",
    steps: Any = None,
    overrides: Any = None,
    stage0: Any = None,
    device: Any = None,
    progress: Any = True,
    steps_name: str = "steps",
) -> None:
    """What a base model needs (`steps_name`: how the caller calls the stage-1 steps, `base_steps` in
    `adapt`); the preset is loaded with the overrides, so a bad override fails here too."""
    _kind("preset", preset, (str, Path), "a preset name (tiny, small, paper) or a .yaml file")
    _kind("work_dir", work_dir, (str, Path), "a folder path")
    if not str(work_dir):
        _fail("work_dir", work_dir, "must not be empty")
    integer("seed", seed)
    if scale not in SCALES:
        _fail("scale", scale, f"choose one of {', '.join(SCALES)}")
    if source_domain not in DOMAINS:
        _fail(
            "source_domain",
            source_domain,
            f"the base model trains on a synthetic domain: {', '.join(DOMAINS)}",
        )
    integer(steps_name, steps, minimum=0, optional=True)
    if overrides is not None and not isinstance(overrides, dict):
        _fail("overrides", overrides, 'must be a mapping of preset keys, e.g. {"stage2.lr": 3e-4}')
    _kind("progress", progress, (bool,), "True or False")
    if device is not None:
        _kind("device", device, (str,), "a torch device name (cpu, cuda, cuda:1) or None")
    try:
        cfg = load_preset(preset)
    except ConfigError as e:
        raise ParamError(f"preset={str(preset)!r}: {e}") from None
    if overrides:
        if "seed" in overrides and overrides["seed"] != seed:
            _fail(
                "overrides", overrides, f"seed={overrides['seed']!r} conflicts with the parameter seed={seed}"
            )
        try:
            load_preset(preset, overrides)
        except ConfigError as e:
            raise ParamError(f"overrides={overrides!r}: {e}") from None
    if stage0 is not None:
        _kind("stage0", stage0, (str, Path), "a stage-0 checkpoint path or None (the shipped one)")
        if not Path(stage0).is_file():
            _fail("stage0", str(stage0), "no such file")
    elif cfg.stage0 is not None and not DEFAULT_STAGE0.is_file():
        _fail(
            "stage0", None, f"the preset starts from a stage-0 checkpoint and {DEFAULT_STAGE0} is missing; "
            f"build it with `python -m mbasr pretrain all` or pass stage0=<path>",
        )  # fmt: skip


def check_adapt(
    strategy: Any,
    p: Any,
    tau: Any,
    target_domain: Any,
    source_domain: Any,
    work_dir: Any,
    steps: Any = None,
    lr: Any = None,
    eval_source: Any = False,
    eval_dev: Any = False,
    eval_test: Any = True,
    results_dir: Any = None,
    notebook: Any = "",
    executed_notebook: Any = None,
    tau_name: str = "tau",
) -> None:
    """What stage 2 needs besides the base model (`check_base`); the target is looked up among the
    synthetic domains and those imported into `work_dir` (`mbasr import`)."""
    if strategy not in STRATEGIES:
        _fail(
            "strategy", strategy, f"choose one of {STRATEGIES} (p = 0 without adaptation is the base model)"
        )
    number("p", p, 0, 1)
    if strategy == "text_only" and p != 0:
        _fail("p", p, "text-only adaptation uses no target audio; set p=0")
    if strategy in ("mixed", "asr") and p == 0:
        _fail("p", p, f"strategy={strategy!r} needs a target audio share p in (0, 1]")
    if strategy != "asr":
        number(
            tau_name,
            tau,
            0,
            1,
            open_low=True,
            open_high=True,
            hint=": the target share of a batch (paper: 0.5)",
        )
    integer("steps", steps, minimum=0, optional=True)
    if lr is not None:
        number("lr", lr, 0, open_low=True, hint=" (None: the preset's)")
    for name, flag in (("eval_source", eval_source), ("eval_dev", eval_dev), ("eval_test", eval_test)):
        _kind(name, flag, (bool,), "True or False")
    if not (eval_test or eval_dev or eval_source):
        _fail("eval_test", eval_test, "with neither eval_dev nor eval_source nothing would be evaluated")
    for name, v in (("results_dir", results_dir), ("executed_notebook", executed_notebook)):
        if v is not None:
            _kind(name, v, (str, Path), "a path or None")
    _kind("notebook", notebook, (str,), "a notebook file name")
    _kind("target_domain", target_domain, (str,), "a domain name")
    domains.require_target(work_dir, target_domain, source_domain, need_dev=eval_dev, need_train_audio=p > 0)


# ---------------------------------------------------------------------------------------------------------
# notebooks

_TYPES: dict[str, tuple[tuple[type, ...], str]] = {
    "str": ((str,), "a string"),
    "int": ((int,), "an integer"),
    "float": ((int, float), "a number"),
    "bool": ((bool,), "True or False"),
    "list": ((list,), "a list"),
    "dict": ((dict,), "a mapping"),
}


def _history(ns: dict[str, Any]) -> list[str]:
    return [c for c in ns.get("In", []) if isinstance(c, str)]


def declared_params(ns: dict[str, Any]) -> dict[str, str]:
    """The notebook's parameters (name -> annotation): the annotated names of its `parameters` cell."""
    if isinstance(ns.get("__annotations__"), dict):
        return {k: getattr(v, "__name__", str(v)) for k, v in ns["__annotations__"].items()}
    out: dict[str, str] = {}  # no module annotations (a newer Python): read them from the cells run
    for cell in _history(ns):
        try:
            tree = ast.parse(cell)
        except SyntaxError:
            continue
        for node in tree.body:
            if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
                out[node.target.id] = ast.unparse(node.annotation)
    return out


def injected_params(ns: dict[str, Any]) -> list[str]:
    """The names papermill set in this kernel (none when the notebook runs by hand)."""
    names: list[str] = []
    for cell in _history(ns):
        if cell.split("\n", 1)[0].strip() != INJECTED_HEADER:
            continue
        for node in ast.parse(cell).body:
            if isinstance(node, ast.Assign):
                names += [t.id for t in node.targets if isinstance(t, ast.Name)]
    return list(dict.fromkeys(names))


def notebook_params(ns: dict[str, Any], notebook: str = "this notebook") -> dict[str, Any]:
    """The declared parameters' values from the kernel namespace `ns` (`globals()`), checked: an unknown
    injected name or a value of the wrong type fails, naming it (an int is taken for a float)."""
    declared = declared_params(ns)
    unknown = [n for n in injected_params(ns) if n not in declared]
    if unknown:
        raise ParamError(
            f"{notebook}: unknown parameter(s) {', '.join(unknown)} (papermill -p); "
            f"its parameters: {', '.join(declared)}"
        )
    values = {}
    for name, ann in declared.items():
        value = ns[name]
        types, what = _TYPES.get(ann, ((object,), ann))
        if not isinstance(value, types) or (isinstance(value, bool) and bool not in types):
            raise ParamError(f"{name}={value!r}: must be {what} ({notebook} declares `{name}: {ann}`)")
        values[name] = float(value) if ann == "float" else value
    return values


def json_param(name: str, text: str) -> dict | None:
    """A notebook's JSON-text parameter (`overrides`), parsed: empty is None."""
    if not text:
        return None
    try:
        value = json.loads(text)
    except json.JSONDecodeError as e:
        raise ParamError(f"{name}={text!r}: not JSON ({e}); e.g. '{{\"stage2.warmup_steps\": 2}}'") from None
    if not isinstance(value, dict):
        _fail(name, text, "must be a JSON object of preset keys")
    return value
