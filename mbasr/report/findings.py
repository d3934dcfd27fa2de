"""What the report says in words, generated from `claims.json`, the tidy table and the presets,
never typed: the home page's "What we found", the verdict line that opens each figure page, how to read
the intervals, the limitations and the citation.

`claims.json` is read generically (its `claim`, `statement`, `verdict` and `why` fields): which figure
each claim is read from is the paper's (docs/paper.md, "The claims to test"), kept here as `CLAIM_FIGURE`;
the per-target verdicts are parsed from `why` ("banking: held: ...").
"""

from __future__ import annotations

import html
import json
import re
from pathlib import Path

import pandas as pd

from mbasr import vocab

PAPER_URL = "https://arxiv.org/abs/2604.06487"
CODE_URL = "https://github.com/idiap/llm-asr-text-only-adaptation"
CLAIM_FIGURE = {1: "2", 2: "2", 3: "2", 4: "3", 5: "1"}  # the figure each of the paper's claims is read from
VERDICT_WORDS = {"held": "held", "not held": "did not hold", "inconclusive": "were inconclusive"}
BIBTEX_PAPER = """@inproceedings{banerasroux2026closing,
  title     = {Closing the Speech-Text Gap with Limited Audio for Effective Domain Adaptation
               in {LLM}-Based {ASR}},
  author    = {{Ba\\~{n}eras-Roux} and Burdisso and {Villatoro-Tello} and {S\\'{a}nchez-Cort\\'{e}s} and Liu and
               Baroudi and Kumar and Watawana and {Manjunath K E} and Hacioglu and Motlicek and Stolcke},
  booktitle = {Proc. Interspeech 2026},
  pages     = {6239--6244},
  year      = {2026},
  doi       = {10.21437/Interspeech.2026-3383},
  eprint    = {2604.06487},
  archivePrefix = {arXiv}
}"""


def esc(text) -> str:
    return html.escape(str(text))


def load_claims(results: Path) -> list[dict]:
    path = results / "claims.json"
    return sorted(json.loads(path.read_text()), key=lambda c: c["claim"]) if path.exists() else []


def per_target(why) -> dict[str, str]:
    """{target: its verdict} from a claim's `why` ("banking: held: ... agriculture: not held: ...")."""
    found = re.findall(r"(?:^|\.\s+)([a-z_]+): (held|not held|inconclusive)\b", str(why))
    return {t: v for t, v in found}


def _list(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def claim_words(c: dict) -> str:
    """`claim 3 did not hold (held on Agriculture; did not hold on Banking)`."""
    v = str(c["verdict"])
    by = per_target(c.get("why"))
    groups: dict[str, list[str]] = {}
    for t, tv in by.items():
        groups.setdefault(tv, []).append(vocab.domain(t))
    where = "; ".join(f"{esc(tv)} on {esc(_list(ts))}" for tv, ts in groups.items())
    return f"claim {c['claim']} ({esc(vocab.humanize(c['statement']).rstrip('.'))}) {claim_verb(v)}" + (
        f" ({where})" if len(groups) > 1 else ""
    )


def figure_verdict(claims: list[dict], figure: str) -> str:
    """The line that opens a figure page: reproduced / partly reproduced / not reproduced, and why."""
    mine = [c for c in claims if CLAIM_FIGURE.get(int(c["claim"])) == figure]
    if not mine:
        return ""
    held = [str(c["verdict"]) == "held" for c in mine]
    refuted = [str(c["verdict"]) == "not held" for c in mine]
    if all(held):
        word = "reproduced"
    elif any(held):
        word = "partly reproduced"
    else:
        word = "not reproduced" if any(refuted) else "inconclusive"
    why = "; ".join(claim_words(c) for c in mine)
    return (
        f'<p class="mbasr-verdict" data-figure="{figure}" data-verdict="{word}" '
        f'data-claims="{",".join(str(c["claim"]) for c in mine)}"><b>{word.capitalize()}.</b> '
        f"{why[0].upper() + why[1:]}. The reasons in numbers are on the home page.</p>"
    )


def intervals(df: pd.DataFrame | None) -> str:
    """What our error bars are, from the runs: one seed or several."""
    if df is None:
        return ""
    seeds = sorted(int(s) for s in df["seed"].unique())
    if len(seeds) == 1:
        return (
            f"Ours: one training run per point (seed {seeds[0]}); bars and brackets are 95% bootstrap "
            "confidence intervals over the test utterances, not over training runs."
        )
    return (
        f"Ours: the mean over seeds {_list([str(s) for s in seeds])}; bars and brackets span the union of "
        "the seeds' 95% bootstrap confidence intervals over the test utterances."
    )


def _model(d: dict) -> str:
    if d.get("hub_id"):
        return d["hub_id"].split("/")[-1]
    return f"{d['scratch']['n_layers']}-layer, {d.get('dim') or d.get('hidden')}-wide"


def versions(df: pd.DataFrame) -> list[tuple[str, int]]:
    """(code version, number of runs), most runs first."""
    per_run = df.drop_duplicates("run_id")["code_version"].astype(str)
    return list(per_run.value_counts().items())


def what_we_found(claims: list[dict], df, run: dict, presets: dict, paper: pd.DataFrame, links: dict) -> str:
    """The home page's opening paragraph (3-5 sentences) and its figure thumbnail."""
    preset = presets.get(run["preset"], {})
    ref = presets.get("paper", {})
    seeds = sorted(int(s) for s in df["seed"].unique())
    targets = [vocab.domain(t) for t in dict.fromkeys(df["target_domain"].dropna())]
    s1 = (
        f"We reran the study with the **{esc(run['preset'])}** preset at **{esc(run['scale'])}** scale: "
        f"{df['run_id'].nunique()} runs ({'seed' if len(seeds) == 1 else 'seeds'} "
        f"{_list([str(s) for s in seeds])}) of a {_model(preset['encoder'])} speech encoder and a "
        f"{_model(preset['llm'])} LLM, on our offline synthetic corpus (speech from TTS voices; targets "
        f"{esc(_list(targets))})."
    )
    groups: dict[str, list[str]] = {v: [] for v in VERDICT_WORDS}  # held first
    for c in claims:
        groups.setdefault(str(c["verdict"]), []).append(str(c["claim"]))
    groups = {v: n for v, n in groups.items() if n}
    parts = [
        f"claim{'s' if len(n) > 1 else ''} {_list(n)} {VERDICT_WORDS.get(v, esc(v)) if len(n) > 1 else claim_verb(v)}"
        for v, n in groups.items()
    ]
    s2 = f"Of the paper's {len(claims)} claims, " + "; ".join(parts) + "." if claims else ""
    held = [c for c in claims if str(c["verdict"]) == "held"]
    if held:
        s2 += " What held: " + "; ".join(esc(vocab.humanize(c["statement"])).rstrip(".") for c in held) + "."
    s3 = level_gap(df, paper, preset, ref)
    s4 = (
        f"Every departure from the paper's setting, with how to restore it, is in [the deviations table]"
        f"({links['deviations']})."
    )
    thumb = (
        f'[![Figure 2 redrawn: the paper dashed, ours solid]({links["thumbnail"]}){{width="60%" '
        f'fig-alt="Figure 2 redrawn, WER against the target audio share"}}]({links["figure"]})'
    )
    counts = " ".join(f'data-{v.replace(" ", "-")}="{",".join(n)}"' for v, n in groups.items())
    body = " ".join(x for x in (s1, s2, s3, s4) if x)
    return f"::: {{#what-we-found {counts}}}\n## What we found {{#found}}\n\n{body}\n\n{thumb}\n:::\n"


def claim_verb(v: str) -> str:
    return {"held": "held", "not held": "did not hold", "inconclusive": "was inconclusive"}.get(v, esc(v))


def level_gap(df, paper: pd.DataFrame, preset: dict, ref: dict) -> str:
    """The most important deviation: how far our WER level sits from the paper's, on Banking's base model."""
    ours = df[(df["experiment"] == "base") & (df["eval_domain"] == "banking") & (df["split"] == "test")]
    theirs = paper[(paper["figure"] == "2") & (paper["target"] == "banking") & (paper["method"] == "asr")]
    theirs = theirs[theirs["p"] == 0]
    if ours.empty or theirs.empty:
        return ""
    return (
        f"The most important deviation is the size of the models: instead of "
        f"{_model(ref['encoder'])} and {_model(ref['llm'])}, ours are a much smaller encoder and an LLM "
        f"pretrained here on a few hours of synthetic speech and general text, so our base model's Banking WER is {100 * ours['wer'].mean():.1f}% against the "
        f"paper's {theirs['value'].iloc[0]:.2f}%, and every comparison is made at a much higher error level."
    )


def limitations(df, run: dict, paper: pd.DataFrame, our_targets) -> str:
    seeds = df["seed"].nunique()
    missing = [vocab.domain(t) for t in dict.fromkeys(paper["target"]) if t not in our_targets]
    vers = versions(df)
    items = [
        f"Preset {esc(run['preset'])}: models far smaller than the paper's, the LLM pretrained here (see "
        "the deviations table); WER levels are not comparable with the paper's, only the directions.",
        "The corpus is synthetic (TTS voices reading grammar-made sentences), not DefinedAI or SlideSpeech.",
        f"{seeds} seed{'s' if seeds > 1 else ''} per point: our intervals cover test-set sampling"
        + (", not the variance between training runs." if seeds == 1 else " and the seeds."),
        f"No counterpart of the paper's {esc(_list(missing))} targets: their panels show the paper's numbers only."
        if missing
        else "",
        f"The runs come from {len(vers)} code versions: "
        + ", ".join(f"{esc(v[:12])}{'…' if len(v) > 12 else ''} ({n} runs)" for v, n in vers)
        + "; the report is regenerated from one clean commit only when the whole grid is rerun."
        if len(vers) > 1
        else "",
    ]
    return "## Limitations\n\n" + "\n".join(f"- {i}" for i in items if i) + "\n"


def commit_line(df) -> str:
    vers = versions(df)
    main, n = vers[0]
    dirty = [v for v, _ in vers if v.endswith("+dirty")]
    text = f"Results made from commit `{esc(main)}` ({n} of {df['run_id'].nunique()} runs)"
    if len(vers) > 1:
        text += "; the others from " + ", ".join(f"`{esc(v)}` ({k})" for v, k in vers[1:])
    if dirty:
        text += " (`+dirty`: a working tree with uncommitted changes)"
    return text + "."


def citation(commit: str) -> str:
    companion = (
        "@software{mbasr,\n  title  = {mbasr: a reproducible companion to ``Closing the Speech-Text Gap with "
        "Limited Audio''},\n"
        f"  note   = {{results of commit {commit}}},\n  year   = {{2026}}\n}}"
    )
    return (
        "## Cite\n\nThe paper, and this companion:\n\n"
        f"```bibtex\n{BIBTEX_PAPER}\n```\n\n```bibtex\n{companion}\n```\n"
    )
