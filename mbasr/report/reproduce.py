"""The reproduce page's generated part: the presets (models, stage-2 budget), what our runs of each cost
(from the result records), the stage-2 learning-rate search, and each preset's deviations from the paper."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import yaml

from mbasr.config import PRESET_DIR
from mbasr.report.markdown import esc
from mbasr.vocab import SHORT as SYSTEM_LABEL
from mbasr.vocab import domain as nice


def presets() -> dict[str, dict]:
    return {p.stem: yaml.safe_load(p.read_text()) for p in sorted(PRESET_DIR.glob("*.yaml"))}


def _model(d: dict) -> str:
    if d.get("hub_id"):
        return f"`{d['hub_id']}`"
    return f"{d['scratch']['n_layers']} layers x {d.get('dim') or d.get('hidden')}, trained in stage 0"


def _costs(results: Path) -> dict[str, str]:
    """Per preset, from the result records: runs, median training time, total time."""
    by: dict[str, list[dict]] = {}
    for p in sorted((results / "records").glob("*.json")):
        rec = json.loads(p.read_text())
        by.setdefault(str(rec.get("preset")), []).append(rec.get("seconds") or {})
    return {
        preset: f"{len(secs)} runs; training {np.median([s.get('train') or 0 for s in secs]) / 60:.1f} min a run "
        f"(median); {sum(s.get('total') or s.get('train') or 0 for s in secs) / 3600:.2f} h in all"
        for preset, secs in by.items()
    }


def presets_fragment(results: Path) -> str:
    """The presets (model and stage-2 budget), what our runs of each cost (from the result records), and
    each preset's deviations from the paper (its `deviations:`)."""
    cost = _costs(results)
    rows = ["| preset | encoder → LLM | stage 2 (LoRA) | our runs |", "| --- | --- | --- | --- |"]
    dev = ["| preset | deviation from the paper, and how to restore the paper's setting |", "| --- | --- |"]
    for name, p in presets().items():
        s2 = p["stage2"]
        budget = f"{s2['steps']} steps" if s2.get("steps") else f"{s2['epochs']} epochs"
        rows.append(
            f"| `{name}` | {_model(p['encoder'])} → {_model(p['llm'])}, {p['precision']} | {budget}, batch "
            f"{s2['batch_size']}, lr {s2['lr']:g} | {cost.get(name, 'none in `results/records/`')} |"
        )
        dev += [
            f"| `{name}` | {str(d).replace('|', '/')} |"
            for d in p["deviations"] or ["none: the paper's setting"]
        ]
    return (
        "\n".join(rows)
        + "\n\n"
        + search_fragment(results)
        + "\n### Deviations from the paper\n\n"
        + "\n".join(dev)
        + "\n"
    )


def search_fragment(results: Path) -> str:
    """The stage-2 learning-rate search (`results/search.json`, mbasr/study/search.py): each strategy's dev WER
    per candidate lr and the lr its runs use."""
    path = results / "search.json"
    if not path.exists():
        return (
            "### Stage-2 learning rates\n\nNo `results/search.json`: no learning-rate search was published "
            'with these runs (README.md, "The learning-rate search").\n'
        )
    s = json.loads(path.read_text())
    lrs = s["config"]["lrs"]
    dev = esc(", ".join(f"{nice(d['domain'])} {d['split']}" for d in s["dev_sets"]))
    head = "| strategy | " + " | ".join(f"lr {lr:g}" for lr in lrs) + " | chosen |"
    rows = [head, "| --- |" + " --- |" * (len(lrs) + 1)]
    for strategy, v in s["strategies"].items():
        by = {c["lr"]: c for c in v["candidates"]}
        cells = []
        for lr in lrs:
            c = by.get(lr)
            text = "—" if c is None else f"{100 * c['dev_wer']:.2f}"
            if c is not None and c.get("ci_low") is not None:
                text += f" [{100 * c['ci_low']:.2f}, {100 * c['ci_high']:.2f}]"
            cells.append(f"**{text}**" if c is not None and lr == v["chosen_lr"] else text)
        edge = " (an end of the range)" if v.get("at_edge") else ""
        rows.append(
            f"| {SYSTEM_LABEL.get(strategy, strategy)} | "
            + " | ".join(cells)
            + f" | {v['chosen_lr']:g}{edge} |"
        )
    return (
        f"### Stage-2 learning rates, chosen on a dev set\n\nDev WER (%) [95% CI] on {dev} after "
        f"{s['steps']} steps, the same candidates for every strategy; the rule: {s['rule']}.\n\n"
        + "\n".join(rows)
        + "\n"
    )
