"""The synthetic corpus (the paper's "Data", rebuilt offline): a call-centre `source` domain, an in-domain
target (`banking`, like the paper's Banking) and two far targets (`agriculture`, `musical_instruments`,
like the SlideSpeech lecture domains), plus a `general` pool of broad English on which the
`tiny` preset pretrains its LM (text, and reading general speech in the slot), as the paper's LLM was
pretrained on general data.

As in the paper, the source is a mix of call-centre domains that includes banking calls (the paper's
DefinedAI Banking/Insurance/Healthcare source; its Banking target is in-domain): SOURCE_MIX sets the share
of the source's sentences drawn from the banking grammar; the rest come from the generic customer-service
grammar. No sentence is in both the source and the banking target. Source and banking share the
call-centre telephone channel, the far targets a lecture-room condition (`acoustics.DEFAULT_CONDITION`).

`prepare_corpus(work_dir, scale, seed, ...)` is idempotent: the corpus folder is keyed by its parameters
and the content of the grammars, lexicons and synthesis code, and marked complete only when every
manifest is written; audio is cached per utterance under `work_dir/audio/`, keyed by everything that
shapes it (text, voice, jitter, acoustic condition, synthesis code), so a rebuild with unchanged
parameters is a no-op (once every file is checked against the record in COMPLETE) and a changed
parameter only synthesises what changed. A build prints its figure
(wall time, utterances, hours, processes, CPU time; also in stats.json): the default corpus, 21,700
utterances and 24.4 h, took 690 s user + 128 s sys of CPU (38 ms per utterance), so about 7 minutes on
2 otherwise idle cores. Where the CPU goes: the docstrings of mbasr/tools/tts_server.py (engine server)
and acoustics.py. The synthesis workers and their engine servers end with the build, also when it is
interrupted or killed (mbasr.data.workers).

Layout of `work_dir/corpus/<scale>-seed<seed>-<hash>/`:
    {domain}_{split}.jsonl      manifests (key, source, target, duration, domain, voice, split)
    general_text.txt            the general pool's text (LM pretraining), one sentence a line
    stats.json, gap.csv         sizes, hours, voices, and the measured domain gap
    params.json                 what built it
    COMPLETE                    the completion marker: every file's size and hash (mbasr.data.integrity),
                                checked on reuse; a file that differs is named, discarded and made again
"""

from __future__ import annotations

import json
import random
import resource
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from mbasr.data import acoustics, integrity, tts
from mbasr.data.audio_cache import AudioJob, plan_audio, synthesize_all, to_make, with_recorded_sizes
from mbasr.data.grammar import GRAMMAR_DIR, domain_grammar, generate_sentences
from mbasr.data.manifest import SPLITS, Utterance, read_manifest, total_hours, write_manifest
from mbasr.data.workers import n_processes
from mbasr.io import atomic_write_json, atomic_write_text, stable_hash

SOURCE = "source"
TARGETS = ("banking", "agriculture", "musical_instruments")
DOMAINS = (SOURCE, *TARGETS)
GENERAL = "general"

# Sentences per split (train, dev, test) for each domain, and the general pool's size. "default" meets
# the foundation issue's floor: >= 6,000 source and >= 3,000 target training sentences, >= 300 dev and
# >= 400 test sentences per domain, >= 500,000 words of general text and >= 4 h of general speech.
SCALES: dict[str, dict] = {
    "micro": {
        "source": (48, 12, 16),
        "target": (32, 8, 12),
        "general_words": 20_000,
        "general_speech": (48, 12),
    },
    "default": {
        "source": (6000, 300, 400),
        "target": (3000, 300, 400),
        "general_words": 1_300_000,
        "general_speech": (3600, 300),
    },
    "large": {
        "source": (12000, 500, 800),
        "target": (6000, 500, 800),
        "general_words": 1_400_000,
        "general_speech": (10800, 400),  # 12 h: what the tiny encoder is pretrained on (stage 0)
    },
}
# The source's sentences by grammar: generic customer service, and banking calls (held apart from the
# banking target's sentences), as the paper's source holds Banking beside Insurance and Healthcare.
SOURCE_MIX = {"source": 2 / 3, "banking": 1 / 3}
SHOW_MISMATCHES = 20  # files named when a reused corpus differs from its build (the rest counted)
_DATA_ROOT = GRAMMAR_DIR.parent


@dataclass(frozen=True)
class Corpus:
    root: Path
    params: dict

    def manifest(self, domain: str, split: str) -> Path:
        return self.root / f"{domain}_{split}.jsonl"

    @property
    def general_text_path(self) -> Path:
        return self.root / "general_text.txt"

    @property
    def stats(self) -> dict:
        return json.loads((self.root / "stats.json").read_text())


def load_split(corpus: Corpus, domain: str, split: str) -> list[Utterance]:
    path = corpus.manifest(domain, split)
    if not path.exists():
        have = sorted(p.stem for p in corpus.root.glob("*.jsonl"))
        raise FileNotFoundError(f"{path}: no manifest for domain={domain!r} split={split!r}; have: {have}")
    return read_manifest(path)


def general_text(corpus: Corpus) -> list[str]:
    return corpus.general_text_path.read_text(encoding="utf-8").splitlines()


def _content_version() -> str:
    """Hash of everything that shapes the corpus besides the parameters: grammars, lexicons, code."""
    files = sorted((_DATA_ROOT / "grammars").glob("*.yaml")) + sorted((_DATA_ROOT / "lexicons").glob("*.txt"))
    here = Path(__file__).parent
    files += [here / m for m in ("grammar.py", "general.py", "normalize.py", "corpus.py", "audio_cache.py")]

    return stable_hash([(f.name, f.read_bytes().hex()) for f in files], n=16)


def _split(sents: list[str], n_dev: int, n_test: int) -> dict[str, list[str]]:
    return {"test": sents[:n_test], "dev": sents[n_test : n_test + n_dev], "train": sents[n_test + n_dev :]}


def _domain_texts(domains: Sequence[str], sizes: dict, seed: int) -> dict[tuple[str, str], list[str]]:
    """Distinct sentences per domain and split (test / dev / train, disjoint by construction).

    Each target's grammar is drawn, shuffled and split. The source takes SOURCE_MIX of each split from
    each grammar: its own grammar is drawn and split exactly as a source of the full size, and each split
    keeps its share from the front, so its dev and test sentences are the source grammar's held-out ones
    at this seed whatever the mix (what stage 0's LM text excludes); its banking sentences are drawn with
    the banking target's in one call, after them, so the two never share a sentence."""
    if tuple(domains) != DOMAINS:  # the same sentences whichever domains a corpus builds
        every = _domain_texts(DOMAINS, sizes, seed)
        return {k: v for k, v in every.items() if k[0] in domains}
    counts = {d: sizes["source" if d == SOURCE else "target"] for d in domains}
    share = {g: [round(w * n) for n in counts[SOURCE]] for g, w in SOURCE_MIX.items() if g != SOURCE}
    share[SOURCE] = [n - sum(s[i] for s in share.values()) for i, n in enumerate(counts[SOURCE])]

    def draw(g: str, n: int) -> list[str]:
        sents = generate_sentences(domain_grammar(g), n, seed)
        # Shuffle before splitting: a template with few wordings is used up in the first draws, and
        # splitting in draw order would put all of it in the test set.
        random.Random(f"split-{g}-{seed}").shuffle(sents)
        return sents

    texts: dict[tuple[str, str], list[str]] = {}
    rest: dict[str, list[str]] = {}
    for g in dict.fromkeys([*domains, *share]):
        own = sum(counts[g]) if g in domains else 0
        extra = 0 if g == SOURCE else sum(share.get(g, ()))
        sents = draw(g, own + extra + (extra // 20 + 10 if extra else 0))  # spares: shared sentences
        if g != SOURCE and g in domains:
            n_train, n_dev, n_test = counts[g]
            texts.update({(g, k): v for k, v in _split(sents[:own], n_dev, n_test).items()})
        rest[g] = sents[own:] if g != SOURCE else sents
    taken = {x for v in texts.values() for x in v}
    parts: dict[str, list[str]] = {"train": [], "dev": [], "test": []}
    for g, sizes_g in share.items():
        n_train, n_dev, n_test = counts[SOURCE] if g == SOURCE else sizes_g
        pool = _split(rest[g], n_dev, n_test) if g == SOURCE else None
        if pool is None:  # the banking share: split in the order drawn, after the banking target's
            unique = [x for x in rest[g] if x not in taken][: sum(sizes_g)]
            pool = _split(unique, sizes_g[1], sizes_g[2])
        for k, want in zip(("train", "dev", "test"), sizes_g, strict=True):
            got = [x for x in pool[k] if x not in taken][:want]
            if len(got) < want:
                raise ValueError(f"grammar {g!r}: too few distinct sentences for the source's {k} share")
            taken.update(got)
            parts[k] += got
    for k, v in parts.items():  # interleave the grammars: a manifest's first lines show the mix
        random.Random(f"mix-{k}-{seed}").shuffle(v)
        texts[(SOURCE, k)] = v
    return texts


def _resolve_scale(scale: str) -> dict:
    if scale not in SCALES:
        raise ValueError(f"scale={scale!r}: unknown; choose one of {sorted(SCALES)}")
    return SCALES[scale]


def _resolve_conditions(domains: Sequence[str], conditions: bool | dict) -> dict[str, str]:
    if conditions is True:
        table = dict(acoustics.DEFAULT_CONDITION)
    elif conditions is False:
        table = {}
    else:
        table = dict(acoustics.DEFAULT_CONDITION) | dict(conditions)
    out = {d: table.get(d, "clean") for d in (*domains, GENERAL)}
    for d, c in out.items():
        if c not in acoustics.CONDITIONS:
            raise ValueError(f"conditions[{d!r}]={c!r}: unknown; choose one of {acoustics.CONDITIONS}")
    return out


def _cpu_seconds() -> tuple[float, float]:
    """(user, sys) CPU seconds of this process and its finished children (the synthesis workers and
    their engine processes, once the pool has shut down)."""
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + kids.ru_utime, me.ru_stime + kids.ru_stime


def prepare_corpus(
    work_dir: str | Path = "runs",
    scale: str = "default",
    seed: int = 0,
    domains: Sequence[str] = DOMAINS,
    conditions: bool | dict = True,
    jobs: int | None = None,
    progress: bool = True,
    audio_domains: Sequence[str] | None = None,
) -> Corpus:
    """Build (or find) the corpus. `domains` must include the source; `conditions` True uses each domain's
    acoustic condition (acoustics.DEFAULT_CONDITION), False makes all audio clean, a dict overrides
    per domain. `jobs` processes synthesise audio (default: all cores). `audio_domains` limits speech
    synthesis to those domains (e.g. ("general",) for stage 0); the others get text-only manifests."""
    sizes = _resolve_scale(scale)
    domains = tuple(domains)
    unknown = set(domains) - set(DOMAINS)
    if unknown:
        raise ValueError(f"domains: unknown {sorted(unknown)}; choose from {DOMAINS}")
    if SOURCE not in domains:
        raise ValueError(f"domains={domains}: must include {SOURCE!r}, the domain every model starts from")
    conds = _resolve_conditions(domains, conditions)
    params = {
        "scale": scale,
        "seed": seed,
        "domains": list(domains),
        "conditions": conds,
        "train_voices": list(tts.TRAIN_VOICES),
        "test_voices": list(tts.TEST_VOICES),
        "engines": tts.engine_versions(),
        "content": _content_version(),
    }
    if audio_domains is not None:
        params["audio_domains"] = sorted(audio_domains)
    work_dir = Path(work_dir)
    root = work_dir / "corpus" / f"{scale}-seed{seed}-{stable_hash(params, n=8)}"
    corpus = Corpus(root, params)
    if (root / integrity.MARKER).exists():
        differ = integrity.check(root)
        if not differ:
            if progress:
                print(f"corpus ready: {root} (unchanged parameters, every file as built, nothing to do)")
            return corpus
        # never trusted: what differs is named, discarded and made again (intact audio is reused)
        shown = [f"  {m}" for m in differ[:SHOW_MISMATCHES]]
        shown += [f"  ... and {len(differ) - SHOW_MISMATCHES} more"] if len(differ) > SHOW_MISMATCHES else []
        print(f"corpus {root}: {len(differ)} file(s) differ from the build; rebuilding:", file=sys.stderr)
        print("\n".join(shown), file=sys.stderr)
        integrity.discard(root, differ)

    t0, cpu0 = time.perf_counter(), _cpu_seconds()
    tts.require_engines(set(tts.TRAIN_VOICES) | set(tts.TEST_VOICES))
    root.mkdir(parents=True, exist_ok=True)
    from mbasr.data.general import general_sentences

    # Text: distinct sentences per domain, split test / dev / train in draw order (disjoint by construction).
    texts = _domain_texts(domains, sizes, seed)
    held_out = {s for (d, split), ss in texts.items() if split != "train" for s in ss}
    pool = general_sentences(seed, sizes["general_words"], exclude=held_out)
    n_speech_train, n_speech_dev = sizes["general_speech"]
    # The general speech (encoder pretraining) and its held-out dev set come from the pool's longer units
    # (>= 8 words: more speech per engine call); the dev sentences are then removed from the LM text, so
    # "reproduce held-out general sentences" is honest.
    n_speech_train, n_speech_dev = sizes["general_speech"]
    long_units = [s for s in pool if len(s.split()) >= 8]
    if len(long_units) < n_speech_train + n_speech_dev:
        raise ValueError(
            f"scale={scale!r}: the general pool has {len(long_units)} units of >= 8 words, "
            f"{n_speech_train + n_speech_dev} needed for its speech; raise general_words"
        )
    texts[(GENERAL, "dev")] = long_units[:n_speech_dev]
    texts[(GENERAL, "train")] = long_units[n_speech_dev : n_speech_dev + n_speech_train]
    general_dev = set(texts[(GENERAL, "dev")])
    pool = [s for s in pool if s not in general_dev]
    atomic_write_text(corpus.general_text_path, "\n".join(pool) + "\n")

    # Audio: train splits use the training voices; dev and test only the held-out voices.
    audio_dir = work_dir / "audio"
    plan: dict[tuple[str, str], list[AudioJob]] = {}
    for (d, split), sents in texts.items():
        voices = tts.TRAIN_VOICES if split == "train" else tts.TEST_VOICES
        plan[(d, split)] = plan_audio(d, split, sents, voices, conds[d], seed, audio_dir)
    with_audio = set(audio_domains) if audio_domains is not None else {d for d, _ in plan}
    all_jobs = [j for (d, _), js in plan.items() if d in with_audio for j in js]
    # checked against what other corpora of the work folder recorded of the audio they share with this one
    all_jobs = with_recorded_sizes(all_jobs, integrity.recorded_sizes(work_dir))
    todo = to_make(all_jobs)
    n_proc = n_processes(jobs)
    durations = synthesize_all(all_jobs, n_proc, f"audio ({todo} to synthesise)", progress)

    manifests = {}
    for (d, split), js in plan.items():
        if d in with_audio:
            utts = [
                Utterance(j.key, j.path, j.text, round(durations[j.key], 3), d, j.voice, split) for j in js
            ]
        else:
            utts = [Utterance(j.key, "", j.text, 0.0, d, "", split) for j in js]
        write_manifest(corpus.manifest(d, split), utts)
        manifests[(d, split)] = utts
    stats = _stats(corpus, manifests, texts, domains, time.perf_counter() - t0, todo, n_proc)
    user, system = (b - a for a, b in zip(cpu0, _cpu_seconds(), strict=True))
    stats["build_cpu_seconds"] = {"user": round(user, 1), "sys": round(system, 1)}
    atomic_write_json(root / "stats.json", stats)
    atomic_write_json(root / "params.json", params)
    integrity.write_marker(root, {corpus.manifest(d, s).name: u for (d, s), u in manifests.items()})
    if progress:
        wall, hours = stats["build_seconds"], sum(x["hours"] for x in stats["splits"])
        per_utt = f" ({1000 * (user + system) / todo:.0f} ms per synthesised utterance)" if todo else ""
        print(
            f"corpus built in {wall:.0f} s wall ({wall / 60:.1f} min) with {n_proc} "
            f"process{'es' if n_proc > 1 else ''}: {len(all_jobs)} utterances, {hours:.1f} h of audio, "
            f"{todo} synthesised now; CPU {user:.0f} s user + {system:.0f} s sys{per_utt}: {root}"
        )
    return corpus


def _stats(corpus, manifests, texts, domains, seconds, synthesised, n_proc) -> dict:
    from mbasr.data.textstats import domain_gap_table

    splits = [
        {
            "domain": d,
            "split": s,
            "utterances": len(u),
            "hours": round(total_hours(u), 3),
            "vocabulary": len({w for x in u for w in x.target.split()}),
            "voices": sorted({x.voice for x in u}),
            "condition": corpus.params["conditions"][d],
        }
        for (d, s), u in manifests.items()
    ]
    gap = domain_gap_table(
        {d: texts[(d, "train")] for d in domains}, {d: texts[(d, "test")] for d in domains}, source=SOURCE
    ).reset_index()
    gap.to_csv(corpus.root / "gap.csv", index=False)
    return {
        "splits": splits,
        "gap": gap.to_dict(orient="records"),
        "general_text_words": sum(len(x.split()) for x in general_text(corpus)),
        "build_seconds": round(seconds, 1),
        "synthesised_utterances": synthesised,
        "processes": n_proc,
    }


__all__ = [
    "Corpus",
    "DOMAINS",
    "GENERAL",
    "SCALES",
    "SOURCE",
    "SPLITS",
    "TARGETS",
    "load_split",
    "prepare_corpus",
]
