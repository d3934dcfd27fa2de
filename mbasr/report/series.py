"""What each figure draws, read from a results folder's tidy table (`results.csv`) and the paper's numbers:
our runs selected and aggregated over seeds, in the paper's conventions (`asr` at p = 0 is the base
model, `mb` at p = 0 is text-only adaptation at tau_t = tau), and the paper's value beside ours."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from mbasr.vocab import MB_TAU

COLUMNS = (
    "run_id", "experiment", "preset", "scale", "seed", "source_domain", "target_domain", "p", "tau", "tau_t",
    "steps", "lr", "eval_domain", "split", "wer", "ci_low", "ci_high", "n_utts", "code_version", "created",
    "executed_notebook",
)  # fmt: skip
EXPERIMENTS = ("base", "text_only", "asr", "mixed")


# The MB curves and Figure 3 use mixed runs at MB_TAU; the text-only run at tau_t = MB_TAU is MB at p = 0.
SPLIT = "test"  # the figures report test sets; dev sets are for tuning


def load_results(results_dir: str | Path) -> pd.DataFrame | None:
    """`results.csv` of a results folder (None when there is none), checked against the tidy table's
    columns; WER and CIs stay fractions."""
    path = Path(results_dir) / "results.csv"
    if not path.exists():
        return None
    df = pd.read_csv(path, dtype={"run_id": str, "preset": str, "scale": str, "split": str})
    if missing := [c for c in COLUMNS if c not in df.columns]:
        raise ValueError(f"{path}: missing columns {missing} (the tidy table has {list(COLUMNS)})")
    if unknown := set(df["experiment"]) - set(EXPERIMENTS):
        raise ValueError(f"{path}: unknown experiments {sorted(unknown)}; expected {EXPERIMENTS}")
    for c in ("p", "tau", "tau_t", "wer", "ci_low", "ci_high"):
        df[c] = pd.to_numeric(df[c])
    return df


def main_run(df: pd.DataFrame) -> tuple[pd.DataFrame, dict]:
    """The rows of the most frequent (preset, scale), and what it is and what was left out."""
    counts = df.groupby(["preset", "scale"]).size().sort_values(ascending=False)
    preset, scale = counts.index[0]
    rows = df[(df["preset"] == preset) & (df["scale"] == scale)].copy()
    others = [f"{p}/{s} ({n} rows)" for (p, s), n in counts.iloc[1:].items()]
    return rows, {"preset": preset, "scale": scale, "left_out": others}


def near(series: pd.Series, value: float) -> pd.Series:
    return (series - value).abs() < 1e-6


def at_value(df: pd.DataFrame, col: str, value: float) -> pd.DataFrame:
    return df[df[col].round(6) == round(value, 6)]


def ours_rows(df: pd.DataFrame, method: str, source: str, target: str, eval_domain: str | None = None):
    """Our test rows of one series on `eval_domain` (default: the target), in the paper's conventions:
    `asr` at p = 0 is the base model, `mb` at p = 0 is text-only adaptation at tau_t = tau; `tau_sweep` is
    every text-only run (Figure 1)."""
    d = df[
        (df["split"] == SPLIT)
        & (df["source_domain"] == source)
        & (df["eval_domain"] == (eval_domain or target))
    ]
    base = d[d["experiment"] == "base"]
    mine = d[d["target_domain"] == target]
    sweep = mine[mine["experiment"] == "text_only"]
    text = sweep[near(sweep["tau_t"], MB_TAU)]
    series = {
        "base": base,
        "text_only": text,
        "tau_sweep": sweep,
        "asr": pd.concat([base, mine[mine["experiment"] == "asr"]]),
        "mb": pd.concat([text, mine[(mine["experiment"] == "mixed") & near(mine["tau"], MB_TAU)]]),
    }
    if method not in series:
        raise ValueError(f"method={method!r}: one of {list(series)}")
    return series[method]


def aggregate(rows: pd.DataFrame, by: str) -> pd.DataFrame:
    """One point per value of `by`: WER (%) averaged over seeds, the 95% CI (the envelope of the seeds'
    CIs when there are several), the number of seeds and the executed notebooks behind them."""
    if rows.empty:
        return pd.DataFrame(columns=[by, "wer", "ci_low", "ci_high", "seeds", "notebooks"])
    g = rows.assign(_k=rows[by].round(6)).groupby("_k")
    out = pd.DataFrame(
        {
            "wer": 100 * g["wer"].mean(),
            "ci_low": 100 * g["ci_low"].min(),
            "ci_high": 100 * g["ci_high"].max(),
            "seeds": g["seed"].nunique(),
            "notebooks": g["executed_notebook"].agg(lambda s: sorted({str(x) for x in s.dropna()})),
        }
    )
    return out.rename_axis(by).reset_index().sort_values(by)


def our_points(ours, method: str, source: str | None, target: str, by: str = "p", eval_domain=None):
    """`aggregate` of `ours_rows`; empty without results or without our counterpart of the source."""
    if ours is None or source is None:
        return aggregate(pd.DataFrame(), by)
    return aggregate(ours_rows(ours, method, source, target, eval_domain), by)


def pair(paper_row: pd.DataFrame, our_row: pd.DataFrame) -> dict:
    """One table cell pair: the paper's WER and ours with its CI and seeds (NaN / 0 when absent)."""
    o = our_row.iloc[0] if len(our_row) else None
    return {
        "paper_wer": paper_row["value"].iloc[0] if len(paper_row) else np.nan,
        "ours_wer": np.nan if o is None else o["wer"],
        "ours_ci_low": np.nan if o is None else o["ci_low"],
        "ours_ci_high": np.nan if o is None else o["ci_high"],
        "ours_seeds": 0 if o is None else int(o["seeds"]),
    }


def notebooks_of(*points: pd.DataFrame) -> list[str]:
    return sorted({n for pts in points for ns in pts["notebooks"] for n in ns})


def your_targets(paper: pd.DataFrame, ours: pd.DataFrame | None) -> list[str]:
    """The targets of our runs that the paper never reports: domains imported with `mbasr import`
    (mbasr/data/domains.py), drawn as "your domain" panels without paper numbers."""
    if ours is None:
        return []
    return sorted(set(ours["target_domain"].dropna()) - set(paper["target"]))
