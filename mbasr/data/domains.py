"""The domain store: one lookup over the synthetic corpus's domains (mbasr.data.corpus) and the domains a
user imported into the work folder, so every function that takes a domain name takes either.

    mbasr import notes.jsonl --domain maintenance --split train --synthesize    # text-only: spoken
    mbasr import notes_test.jsonl --domain maintenance --split test --synthesize
    adapt("tiny", target_domain="maintenance", strategy="mixed", p=0.2)          # as for "banking"

Imported domains live in `work_dir/imported/` (STORE): `{domain}_{split}.jsonl` manifests, converted
audio under `audio/{domain}/{split}/` (mbasr.data.byod). Lines without audio are spoken with `synthesize=
True` exactly as the synthetic domains are (`prepare_corpus`): train lines with the training voices, dev
and test lines only with the held-out voices, with the jitter and the optional acoustic condition of the
corpus, into the corpus's content-keyed audio cache (`work_dir/audio/`), so a re-import synthesises only
what changed. A manifest's `voice` says which lines brought their audio ("user") and which were spoken.

What a target domain needs (`require_target`): train text (any amount; lines with audio are what the
audio share p draws from) and a test set with audio. A dev set is optional; the learning-rate search and
`eval_dev` need one. An imported name that is a synthetic domain's is refused unless `replace=True`;
then the imported data stands for that domain everywhere the work folder is used.
"""

from __future__ import annotations

from dataclasses import replace as with_fields
from functools import partial
from pathlib import Path

from mbasr.data import acoustics, integrity, tts
from mbasr.data.audio_cache import plan_audio, synthesize_all, with_recorded_sizes
from mbasr.data.byod import FORMATS, ImportReport, check_parameters, import_data
from mbasr.data.corpus import (
    DOMAINS,
    GENERAL,
    SOURCE,
    Corpus,
    load_split,
)
from mbasr.data.manifest import SPLITS, Utterance, read_manifest
from mbasr.data.workers import n_processes
from mbasr.io import file_hash, stable_hash

STORE = "imported"  # the store's folder under the work folder
NO_CONDITION = "none"  # --condition none: the clean signal (acoustics' "clean")
# never imported under their names: the base model is trained on the source, the LM on the general pool
RESERVED = (SOURCE, GENERAL)


def store_dir(work_dir: str | Path) -> Path:
    return Path(work_dir) / STORE


def manifest_path(work_dir: str | Path, domain: str, split: str) -> Path:
    return store_dir(work_dir) / f"{domain}_{split}.jsonl"


def imported_domains(work_dir: str | Path) -> list[str]:
    """The names of the domains imported into `work_dir`, sorted."""
    names = set()
    for p in store_dir(work_dir).glob("*.jsonl"):
        name, _, split = p.stem.rpartition("_")
        if name and split in SPLITS:
            names.add(name)
    return sorted(names)


def is_imported(work_dir: str | Path, domain: str) -> bool:
    return domain in imported_domains(work_dir)


def known_domains(work_dir: str | Path) -> str:
    """Both lists, for an error message."""
    imported = imported_domains(work_dir)
    return f"synthetic: {', '.join(DOMAINS)}; imported into {store_dir(work_dir)}: " + (
        ", ".join(imported) if imported else "none (mbasr import PATH --domain NAME --split SPLIT)"
    )


def check_domain(work_dir: str | Path, domain: str, parameter: str = "target_domain") -> None:
    """Fail, listing the synthetic and the imported domains, when `domain` is neither."""
    if domain not in DOMAINS and not is_imported(work_dir, domain):
        raise ValueError(f"{parameter}={domain!r}: no such domain; {known_domains(work_dir)}")


def load(
    corpus: Corpus, work_dir: str | Path, domain: str, split: str, audio_only: bool = False
) -> list[Utterance]:
    """The utterances of `domain`'s `split`: the imported manifest when there is one, else the corpus's.
    `audio_only`: the lines with audio (what can be scored; an imported test set may hold text too)."""
    if is_imported(work_dir, domain):
        path = manifest_path(work_dir, domain, split)
        if not path.exists():
            have = sorted(p.stem for p in store_dir(work_dir).glob(f"{domain}_*.jsonl"))
            raise FileNotFoundError(
                f"{path}: domain {domain!r} has no {split} split imported (have {have}); run "
                f"`mbasr import FILE --domain {domain} --split {split} --work-dir {work_dir}`"
            )
        utts = read_manifest(path)
        return [u for u in utts if u.has_audio] if audio_only else utts
    check_domain(work_dir, domain, "domain")
    return load_split(corpus, domain, split)


def has_test_audio(work_dir: str | Path, domain: str) -> bool:
    path = manifest_path(work_dir, domain, "test")
    return path.exists() and any(u.has_audio for u in read_manifest(path))


def fingerprint(work_dir: str | Path, domain: str) -> str | None:
    """A hash of an imported domain's manifests (None for a synthetic domain): a re-import with other
    content makes new runs instead of reusing those made on the old data."""
    if not is_imported(work_dir, domain):
        return None
    paths = sorted(store_dir(work_dir).glob(f"{domain}_*.jsonl"))
    return stable_hash([(p.name, file_hash(p, 64)) for p in paths], n=12)


def require_target(
    work_dir: str | Path,
    domain: str,
    source_domain: str,
    need_dev: bool = False,
    need_train_audio: bool = False,
) -> None:
    """Fail before any heavy work when `domain` cannot be a target: unknown, the source itself, or an
    imported domain without train text or without a test set with audio (or without a dev set when
    `need_dev`, without train audio when `need_train_audio`: an audio share p > 0)."""
    check_domain(work_dir, domain)
    if domain == source_domain:
        raise ValueError(f"target_domain={domain!r}: the source domain cannot be its own target")
    if not is_imported(work_dir, domain):
        return
    cmd = f"mbasr import FILE --domain {domain} --work-dir {work_dir}"
    wants = [("train", "train text", f"{cmd} --split train")]
    wants.append(("test", "a test set with audio", f"{cmd} --split test (--synthesize for text-only lines)"))
    if need_dev:
        wants.append(("dev", "a dev set (the lr search and eval_dev score it)", f"{cmd} --split dev"))
    problems = []
    for split, what, fix in wants:
        path = manifest_path(work_dir, domain, split)
        utts = read_manifest(path) if path.exists() else []
        if split == "test" and utts and not any(u.has_audio for u in utts):
            problems.append(f"{path}: no line has audio; a target needs {what}: re-import it with {fix}")
        elif split == "train" and utts and need_train_audio and not any(u.has_audio for u in utts):
            problems.append(
                f"{path}: no line has audio, and an audio share p > 0 draws from the lines with audio: "
                f"re-import it with {fix} --synthesize, or run text-only adaptation (p = 0)"
            )
        elif not utts:
            problems.append(f"{path}: missing; a target needs {what}: {fix}")
    if problems:
        raise ValueError(f"target_domain={domain!r} (imported):\n  " + "\n  ".join(problems))


def resolve_condition(condition: str) -> str:
    name = "clean" if condition == NO_CONDITION else condition
    if name not in acoustics.CONDITIONS:
        raise ValueError(
            f"condition={condition!r}: choose one of {[NO_CONDITION, *acoustics.CONDITIONS]} "
            f"({NO_CONDITION!r} is the clean signal)"
        )
    return name


def synthesize_lines(
    utts: list[Utterance],
    domain: str,
    split: str,
    work_dir: str | Path,
    condition: str = NO_CONDITION,
    seed: int = 0,
    jobs: int | None = None,
    progress: bool = True,
) -> list[Utterance]:
    """`utts` with every line without audio spoken as the synthetic domains' are (`prepare_corpus`): the
    training voices for train, the held-out voices for dev and test; lines with audio are kept as they
    are. Audio goes to the corpus's cache `work_dir/audio/`, keyed by what shapes it."""
    voices = tts.TRAIN_VOICES if split == "train" else tts.TEST_VOICES
    todo = [i for i, u in enumerate(utts) if not u.has_audio]
    if not todo:
        return list(utts)
    tts.require_engines(voices)
    plan = plan_audio(
        domain,
        split,
        [utts[i].target for i in todo],
        voices,
        resolve_condition(condition),
        seed,
        Path(work_dir) / "audio",
    )
    desc = f"speaking {domain} {split}"
    plan = with_recorded_sizes(plan, integrity.recorded_sizes(Path(work_dir)))
    durations = synthesize_all(plan, n_processes(jobs), desc, progress=progress, chunksize=8)
    out = list(utts)
    for i, job in zip(todo, plan, strict=True):
        out[i] = with_fields(out[i], source=job.path, duration=round(durations[job.key], 3), voice=job.voice)
    return out


def import_domain(
    path: str | Path,
    domain: str,
    split: str,
    work_dir: str | Path = "runs",
    fmt: str = "auto",
    synthesize: bool = False,
    condition: str = NO_CONDITION,
    replace: bool = False,
    strict: bool = False,
    seed: int = 0,
    jobs: int | None = None,
    verbose: bool = True,
) -> ImportReport:
    """Import one split of a domain into the store of `work_dir` (`mbasr import`); see the module
    docstring. Parameters are checked before any file is read."""
    check_parameters(fmt, domain, split)
    if domain in RESERVED:
        raise ValueError(
            f"domain={domain!r}: the synthetic corpus's {domain!r} domain cannot be replaced "
            f"(the base model is built on it); choose another name"
        )
    if domain in DOMAINS and not replace:
        raise ValueError(
            f"domain={domain!r}: a synthetic domain of the corpus ({', '.join(DOMAINS)}); choose another "
            "name, or pass --replace (replace=True) to stand your data in for it in this work folder"
        )
    speak = None
    if synthesize:
        speak = partial(
            synthesize_lines,
            domain=domain,
            split=split,
            work_dir=work_dir,
            condition=resolve_condition(condition),
            seed=seed,
            jobs=jobs,
            progress=verbose,
        )
    elif condition != NO_CONDITION:
        raise ValueError(f"condition={condition!r}: applies to synthesised lines only; add --synthesize")
    return import_data(
        path, fmt, domain, split, store_dir(work_dir), strict=strict, verbose=verbose, synthesize=speak
    )


__all__ = [
    "FORMATS",
    "STORE",
    "check_domain",
    "fingerprint",
    "import_domain",
    "imported_domains",
    "known_domains",
    "load",
    "require_target",
    "synthesize_lines",
]
