"""Run ids and run-folder names: the one place that names a run, for the workflow's jobs
(mbasr/study/grid.py), the result records and the run folders of mbasr/runs/.

    base_run_id("tiny", "default", 0)                                     # tiny-default-s0-base
    adapt_run_id("mixed", "tiny", "default", 0, "banking", 0.2, 0.5)      # ...-s0-mixed-banking-p0.2-tau0.5

A preset is named by its name (`tiny`); a preset given as a file is named by its file's stem, so its run
folders stay under the work folder and its run ids stay file names. A file named like a shipped preset
but holding other settings gets a content tag (`tiny_1a2b3c`), so its records never replace the shipped
preset's.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

from mbasr.config import PRESET_DIR
from mbasr.io import file_hash

_LABEL = re.compile(r"[^A-Za-z0-9._]+")
RUN_ID = r"^[A-Za-z0-9][A-Za-z0-9._-]*$"  # a run id is also a file name


def id_number(x: float) -> str:
    """A number as run ids and file names write it: 0.1 -> `0.1`, 1.0 -> `1`."""
    return f"{x:g}"


def run_id_for(
    experiment: str,
    preset: str,
    scale: str,
    seed: int,
    target_domain: str | None = None,
    p: float = 0.0,
    tau: float | None = None,
    extra: tuple[str, ...] = (),
) -> str:
    """A readable, stable run id: `tiny-default-s0-base`, `tiny-default-s0-mixed-banking-p0.2-tau0.5`.
    `tau` is the batch's target share (for text-only runs also the target-text share tau_t); `extra`
    appends parts that tell apart runs the rest does not (another source domain, a step budget)."""
    parts = [preset, scale, f"s{seed}", experiment]
    if experiment != "base":
        parts += [str(target_domain), f"p{id_number(p)}"]
        if tau is not None:
            parts.append(f"tau{id_number(tau)}")
    run_id = "-".join([*parts, *extra])
    if not re.match(RUN_ID, run_id) or "/" in run_id:
        raise ValueError(f"run id {run_id!r}: parts may hold only letters, digits, '.', '_' and '-'")
    return run_id


def lr_part(lr: float | None, default_lr: float) -> tuple[str, ...]:
    """The run-id part of a stage-2 learning rate (for `run_id_for`'s `extra`): `("lr0.003",)` when `lr` is
    given and differs from the preset's `default_lr`, else none, so a run at the preset's lr has one id
    however its lr was given (None, 0, or the value itself)."""
    if not lr or math.isclose(float(lr), float(default_lr), rel_tol=1e-9):
        return ()
    return (f"lr{id_number(float(lr))}",)



def preset_label(preset: str | Path) -> str:
    """The name a preset has in run ids and run folders (see the module docstring)."""
    path = Path(preset)
    if path.suffix not in (".yaml", ".yml"):
        return str(preset)
    stem = _LABEL.sub("_", path.stem).strip("._") or "preset"
    shipped = PRESET_DIR / f"{path.stem}.yaml"
    if shipped.exists() and path.resolve() != shipped.resolve():
        if not path.exists() or file_hash(path) != file_hash(shipped):
            tag = file_hash(path)[:6] if path.exists() else "missing"
            return f"{stem}_{tag}"
    return stem


def run_extra(
    source_domain: str = "source",
    steps: int = 0,
    lr: float = 0.0,
    default_lr: float = 0.0,
    base_steps: int = 0,
) -> tuple[str, ...]:
    """Run-id parts of the settings away from the defaults: another source domain, a step budget, an lr
    other than the preset's `default_lr`, a base model's step budget."""
    out = [f"src_{source_domain}"] if source_domain != "source" else []
    out += [f"steps{int(steps)}"] if steps else []
    out += list(lr_part(lr, default_lr)) if lr else []
    out += [f"base{int(base_steps)}"] if base_steps else []
    return tuple(out)


def base_run_id(
    preset: str | Path, scale: str, seed: int, source_domain: str = "source", base_steps: int | None = 0
) -> str:
    """The base model's run id (its result record and its workflow job)."""
    extra = run_extra(source_domain, base_steps=base_steps or 0)
    return run_id_for("base", preset_label(preset), scale, seed, extra=extra)


def adapt_run_id(
    strategy: str,
    preset: str | Path,
    scale: str,
    seed: int,
    target_domain: str,
    p: float,
    tau: float | None,
    source_domain: str = "source",
    steps: int | None = 0,
    lr: float | None = 0.0,
    default_lr: float = 0.0,
    base_steps: int | None = 0,
) -> str:
    """An adaptation run's id; an `lr` equal to the preset's `default_lr` is the preset's run."""
    if lr and default_lr and math.isclose(float(lr), float(default_lr), rel_tol=1e-9):
        lr = 0.0
    extra = run_extra(source_domain, steps or 0, lr or 0.0, default_lr, base_steps or 0)
    return run_id_for(strategy, preset_label(preset), scale, seed, target_domain, p, tau, extra)


def base_dir_name(preset: str | Path, source_domain: str, seed: int, identity_hash: str) -> str:
    """The base run's folder under `<work_dir>/base/`."""
    return f"{preset_label(preset)}-{source_domain}-seed{seed}-{identity_hash}"
