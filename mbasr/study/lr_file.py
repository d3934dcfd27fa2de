"""The learning rates the grid runs with (workflow/grids/stage2_lr.yaml): one entry per search, written from a
search's result (`mbasr search apply`) with where it came from, and read by the grid."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from mbasr.io import atomic_write_text
from mbasr.study.grid import (
    LR_FILE,
    LR_MATCH,
    ROOT,
    read_lr_file,
)


def lr_entry(result: dict[str, Any], source: str | Path = "") -> dict[str, Any]:
    """The entry of the lr file (`LR_FILE`) that a search outcome makes."""
    spec = result["config"]
    return {
        "applies_to": {k: spec[k] for k in LR_MATCH},
        "lr": {s: v["chosen_lr"] for s, v in result["strategies"].items()},
        "search": {
            "created": result["created"],
            "code_version": result["code_version"],
            "search_json": str(source),
            "rule": result["rule"],
            "dev_sets": [f"{d['domain']} {d['split']}" for d in result["dev_sets"]],
            "p": spec["p"],
            "seed": spec["seed"],
            "steps": result["steps"],
            "lrs": spec["lrs"],
            "preset_lr": spec["preset_lr"],
            "dev_wer": {
                s: {f"{c['lr']:g}": round(c["dev_wer"], 4) for c in v["candidates"]}
                for s, v in result["strategies"].items()
            },
            "at_edge": [s for s, v in result["strategies"].items() if v["at_edge"]],
        },
    }


_HEADER = """\
# Stage-2 learning rates chosen on dev sets, never on test sets (mbasr/study/search.py). mbasr/study/grid.py gives each
# strategy of a grid with `lr: 0.0` its lr from the entry whose `applies_to` matches the grid (preset,
# scale, source_domain, steps, base_steps); a strategy without one keeps the preset's lr, with a note.
# Written by `python -m mbasr search apply` from <work_dir>/results/search.json: rerun the search rather
# than edit this file (README.md, "The learning-rate search").
#
"""


def _describe(e: dict[str, Any]) -> str:
    a, s = e["applies_to"], e["search"]
    lrs = ", ".join(f"{x:g}" for x in s["lrs"])
    chosen = ", ".join(f"{k} {v:g}" for k, v in e["lr"].items())
    edge = f"; at an end of the candidates: {', '.join(s['at_edge'])}" if s.get("at_edge") else ""
    return (
        f"# {a['preset']}/{a['scale']} (source {a['source_domain']}, steps {a['steps']}, base_steps "
        f"{a['base_steps']}): the search of {s['created']} (code {s['code_version']}),\n"
        f"#   on the {', '.join(s['dev_sets'])} set(s) (p {', '.join(f'{p:g}' for p in s['p'])} for mixed "
        f"and asr), seed {s['seed']}, {s['steps']} steps, lrs {lrs} for every strategy\n"
        f"#   -> {chosen} (preset's: {s['preset_lr']:g}){edge}\n"
    )


def render_lr_file(entries: list[dict[str, Any]]) -> str:
    """The text of the lr file: a header naming the search behind each entry, then the entries."""
    body = yaml.safe_dump({"entries": entries}, sort_keys=False, default_flow_style=False)
    lines = (
        "".join(_describe(e) for e in entries)
        or "# No search applied yet: every strategy keeps the preset's lr.\n"
    )
    return _HEADER + lines + body


def apply(result: dict[str, Any], lr_file: str | Path = ROOT / LR_FILE, source: str | Path = "") -> dict:
    """Put a search outcome's chosen lrs into `lr_file` (replacing the entry of the same setting, keeping
    the others), atomically; returns the new entry."""
    lr_file = Path(lr_file)
    entries = read_lr_file(lr_file) if lr_file.exists() else []
    entry = lr_entry(result, source)
    entries = [e for e in entries if e["applies_to"] != entry["applies_to"]] + [entry]
    atomic_write_text(lr_file, render_lr_file(entries))
    return entry
