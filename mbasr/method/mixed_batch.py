"""The five-component mixed batch (the paper's "Mixed batch"), and the other adaptation strategies
through the same sampler, so one training loop serves them all.

| kind            | share    | what the item is                                              |
| --------------- | -------- | ------------------------------------------------------------- |
| source_audio    | sigma_a  | source speech -> transcript                                   |
| projector_noise | sigma_ta | decoded projector tokens of source speech -> transcript       |
| source_text     | sigma_t  | corrupted source transcript -> transcript                     |
| target_audio    | tau_a    | target speech (audio subset only) -> transcript               |
| target_text     | tau_t    | corrupted target transcript -> transcript                     |

A run is given by `p` and `tau`: tau_a = p * tau, tau_t = (1 - p) * tau; the sigmas default to an even
split of 1 - tau. Every batch of size B holds n_t = round(tau * B) target items (half up) followed by
B - n_t source items. The audio subset is `mbasr.data.manifest.subset(target, p, subset_seed)`, the
same seeded, nested subset the standard fine-tuning baseline (`asr`) trains on.

Target items are served in epochs: each epoch is a seeded permutation of all target training
utterances; an utterance of the audio subset is served as audio, every other one as its corrupted
transcript. So only the subset can ever be audio, each target item is audio with probability
|subset| / N = round(p N) / N (= tau_a / tau up to that rounding), and one epoch is exactly one pass
over the target training items. (The authors' code instead flips a tau_a / tau coin each time any
target utterance is loaded, so all target audio is eventually heard; the paper's p-subset is what is
implemented here.) Source items stream through their own permuted epochs, each drawing its kind from
(sigma_a, sigma_ta, sigma_t) / (1 - tau) ("Monte Carlo", as the authors' code).

Strategies (`STRATEGIES`):
- `mixed`: the above, 0 < p <= 1;
- `text_only`: p = 0, all target items are corrupted text (the predecessor paper's method);
- `asr`: standard fine-tuning: every item is target audio from the p subset (tau, sigmas unused);
- `source_only`: every item is source audio (the base model's stage-1 data; target may be None).
An epoch is one pass over the target training items (`mixed`, `text_only`), over the audio subset
(`asr`), or over the source items (`source_only`, or any strategy with n_t = 0).

Batch k is a pure function of (configuration, data, k): each stream position has its own permutation
epoch and its own seeded RNG (for the kind and for the corrupted text), so `state_dict()` is just the
step (plus what is needed to check it is loaded into the same sampler) and a resumed run draws the same
remaining batches.
"""

from __future__ import annotations

import math
import random
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass

import numpy as np

from mbasr.data.manifest import Utterance, subset
from mbasr.io import stable_hash
from mbasr.method.corrupt import PAPER_CORRUPTION, CorruptionConfig, corrupt
from mbasr.vocab import BATCH_STRATEGIES

KINDS = ("source_audio", "projector_noise", "source_text", "target_audio", "target_text")
SHARE_NAMES = {
    "source_audio": "sigma_a",
    "projector_noise": "sigma_ta",
    "source_text": "sigma_t",
    "target_audio": "tau_a",
    "target_text": "tau_t",
}
AUDIO_KINDS = ("source_audio", "target_audio")
STRATEGIES = BATCH_STRATEGIES
_SOURCE_KINDS = KINDS[:3]
_TOL = 1e-6


@dataclass(frozen=True)
class Item:
    kind: str  # one of KINDS
    utt: Utterance  # the utterance; its transcript `utt.target` is always the training label
    text_input: str | None  # what goes in the speech slot for text kinds; None for audio kinds

    @property
    def is_audio(self) -> bool:
        return self.kind in AUDIO_KINDS

    @property
    def is_target(self) -> bool:
        return self.kind.startswith("target_")


@dataclass(frozen=True)
class Shares:
    """The five component shares of a batch; they sum to 1."""

    sigma_a: float
    sigma_ta: float
    sigma_t: float
    tau_a: float
    tau_t: float

    @property
    def tau(self) -> float:
        return self.tau_a + self.tau_t

    def by_kind(self) -> dict[str, float]:
        return {kind: getattr(self, SHARE_NAMES[kind]) for kind in KINDS}


def resolve_shares(
    strategy: str,
    p: float,
    tau: float,
    sigmas: Mapping[str, float] | Sequence[float] | None = None,
) -> Shares:
    """The component shares of a strategy; fails on a bad setting, naming the parameter.

    `sigmas`: None (an even split of 1 - tau), a mapping {"sigma_a", "sigma_ta", "sigma_t"} or a
    sequence (sigma_a, sigma_ta, sigma_t); with tau they must sum to 1.
    """
    if strategy not in STRATEGIES:
        raise ValueError(f"strategy={strategy!r}: unknown; choose one of {STRATEGIES}")
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"p={p}: the audio share p must lie in [0, 1]")
    if not 0.0 <= tau <= 1.0:
        raise ValueError(f"tau={tau}: the target share tau must lie in [0, 1]")
    if strategy in ("asr", "source_only"):
        if sigmas is not None:
            raise ValueError(
                f"sigmas={sigmas}: only used by the mixed and text_only strategies, not {strategy!r}"
            )
        if strategy == "asr":
            if p == 0:
                raise ValueError(
                    "p=0 with strategy 'asr': no target audio to fine-tune on (p=0 is the base model)"
                )
            return Shares(0.0, 0.0, 0.0, 1.0, 0.0)
        return Shares(1.0, 0.0, 0.0, 0.0, 0.0)
    if strategy == "text_only" and p != 0:
        raise ValueError(f"p={p} with strategy 'text_only': text-only adaptation has p = 0 (use 'mixed')")
    if strategy == "mixed" and p == 0:
        raise ValueError("p=0 with strategy 'mixed': mixed batching needs 0 < p <= 1 (p = 0 is 'text_only')")
    names = ("sigma_a", "sigma_ta", "sigma_t")
    if sigmas is None:
        sig = [(1.0 - tau) / 3] * 3
    elif isinstance(sigmas, Mapping):
        if set(sigmas) != set(names):
            raise ValueError(f"sigmas={dict(sigmas)}: needs exactly the keys {names}")
        sig = [float(sigmas[n]) for n in names]
    else:
        if len(sigmas) != 3:
            raise ValueError(f"sigmas={sigmas}: needs three values (sigma_a, sigma_ta, sigma_t)")
        sig = [float(s) for s in sigmas]
    for n, s in zip(names, sig, strict=True):
        if not 0.0 <= s <= 1.0:
            raise ValueError(f"sigmas: {n}={s} must lie in [0, 1]")
    if abs(sum(sig) + tau - 1.0) > _TOL:
        raise ValueError(
            f"sigmas={sig} with tau={tau}: the five shares sum to {sum(sig) + tau:.6f}, not 1 "
            "(sigma_a + sigma_ta + sigma_t must equal 1 - tau)"
        )
    return Shares(*sig, tau_a=p * tau, tau_t=(1.0 - p) * tau)


def _round_half_up(x: float) -> int:
    return math.floor(x + 0.5 + 1e-9)


class _Stream:
    """An endless sequence of utterances: seeded permutations, one per epoch, of the key-sorted list."""

    def __init__(self, utts: Sequence[Utterance], name: str, seed: int):
        self.utts = sorted(utts, key=lambda u: u.key)
        self.name, self.seed = name, seed
        self._perms: dict[int, list[int]] = {}

    def __len__(self) -> int:
        return len(self.utts)

    def at(self, j: int) -> Utterance:
        epoch, r = divmod(j, len(self.utts))
        if epoch not in self._perms:
            if len(self._perms) > 4:
                self._perms.clear()
            perm = list(range(len(self.utts)))
            random.Random(f"{self.seed}-{self.name}-epoch-{epoch}").shuffle(perm)
            self._perms[epoch] = perm
        return self.utts[self._perms[epoch][r]]


def _check_manifest(utts: Sequence[Utterance] | None, name: str) -> list[Utterance]:
    if not utts:
        raise ValueError(f"{name}: empty manifest (no utterances)")
    keys = [u.key for u in utts]
    if len(set(keys)) != len(keys):
        dup = sorted({k for k in keys if keys.count(k) > 1})[:5]
        raise ValueError(f"{name}: duplicate utterance keys {dup}")
    return list(utts)


class MixedBatchSampler:
    """Draws batches of `Item`s for one strategy; see the module docstring.

    `projector_text(utt) -> str` gives the projector-noise text of a source utterance (the model
    supplies it); when it is None, sigma_ta must be 0. `subset_seed` (default: `seed`) fixes the audio
    subset, so runs with other training seeds can keep the same audio.
    """

    def __init__(
        self,
        source: Sequence[Utterance] | None,
        target: Sequence[Utterance] | None,
        strategy: str = "mixed",
        p: float = 0.0,
        tau: float = 0.5,
        batch_size: int = 10,
        seed: int = 0,
        sigmas: Mapping[str, float] | Sequence[float] | None = None,
        corruption: CorruptionConfig = PAPER_CORRUPTION,
        projector_text: Callable[[Utterance], str] | None = None,
        subset_seed: int | None = None,
    ):
        if not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size={batch_size!r}: must be a positive integer")
        self.shares = resolve_shares(strategy, p, tau, sigmas)
        self.strategy, self.p, self.tau, self.batch_size, self.seed = strategy, p, tau, batch_size, seed
        self.subset_seed = seed if subset_seed is None else subset_seed
        self.corruption = corruption
        self.projector_text = projector_text
        if strategy in ("mixed", "text_only"):
            self.n_target = _round_half_up(tau * batch_size)
            if abs(self.n_target / batch_size - tau) > _TOL:
                warnings.warn(
                    f"tau={tau} with batch_size={batch_size}: round(tau * B) = {self.n_target} target items "
                    f"per batch, a realised tau of {self.n_target / batch_size:.3f}",
                    stacklevel=2,
                )
        else:
            self.n_target = batch_size if strategy == "asr" else 0
        self.n_source = batch_size - self.n_target
        s = self.shares
        if s.sigma_ta > 0 and self.n_source and projector_text is None:
            raise ValueError(
                f"sigma_ta={s.sigma_ta:.4g}: projector-noise items need `projector_text` (the model's "
                "decoded projector tokens); pass it, or set sigma_ta = 0 in sigmas"
            )

        self.audio_subset: list[Utterance] = []
        self._target = self._source = None
        if self.n_target:
            target = _check_manifest(target, "target")
            if p > 0:
                if not any(u.has_audio for u in target):
                    raise ValueError(
                        f"p={p}: the target domain has no audio (every utterance lacks `source`)"
                    )
                # drawn from the lines with audio: an imported domain may have text-only lines too
                self.audio_subset = subset([u for u in target if u.has_audio], p, self.subset_seed)
                if not self.audio_subset:
                    raise ValueError(f"p={p}: round(p * {len(target)}) = 0 target utterances of audio")
            self._audio_keys = frozenset(u.key for u in self.audio_subset)
            stream = self.audio_subset if strategy == "asr" else target
            self._target = _Stream(stream, "target", seed)
        if self.n_source:
            source = _check_manifest(source, "source")
            for share in ("sigma_a", "sigma_ta"):
                if getattr(s, share) > 0:
                    silent = [u.key for u in source if not u.has_audio]
                    if silent:
                        raise ValueError(
                            f"{share}={getattr(s, share):.4g}: needs source audio, but e.g. {silent[:5]} have none"
                        )
            self._source = _Stream(source, "source", seed)
            rest = s.sigma_a + s.sigma_ta + s.sigma_t  # = 1 - tau > 0 whenever there are source items
            self._source_cum = np.cumsum([s.sigma_a, s.sigma_ta, s.sigma_t]) / rest
        self._data_hash = stable_hash(
            {
                name: sorted(u.key for u in st.utts)
                for name, st in (("target", self._target), ("source", self._source))
                if st
            }
        )
        self.step = 0

    # ------------------------------------------------------------------ epochs
    @property
    def _epoch_stream(self) -> tuple[int, int]:
        """(items per batch, stream length) of the stream that defines an epoch."""
        if self.n_target:
            return self.n_target, len(self._target)
        return self.n_source, len(self._source)

    @property
    def steps_per_epoch(self) -> int:
        n, size = self._epoch_stream
        return math.ceil(size / n)

    def steps_for_epochs(self, epochs: float) -> int:
        n, size = self._epoch_stream
        return math.ceil(epochs * size / n - 1e-9)

    @property
    def epoch(self) -> float:
        """Epochs drawn so far (fractional)."""
        n, size = self._epoch_stream
        return self.step * n / size

    # ------------------------------------------------------------------ drawing
    def _text(self, kind: str, utt: Utterance, j: int) -> str:
        if kind == "projector_noise":
            return self.projector_text(utt)
        stream = "target" if kind == "target_text" else "source"
        return corrupt(utt.target, self.corruption, seed=f"{self.seed}-{stream}-text-{j}")

    def _item(self, kind: str, utt: Utterance, j: int) -> Item:
        return Item(kind, utt, None if kind in AUDIO_KINDS else self._text(kind, utt, j))

    def plan(self, step: int) -> list[tuple[str, Utterance]]:
        """(kind, utterance) of each item of batch `step`, without drawing any text."""
        out = []
        for j in range(step * self.n_target, (step + 1) * self.n_target):
            u = self._target.at(j)
            out.append(("target_audio" if u.key in self._audio_keys else "target_text", u))
        for j in range(step * self.n_source, (step + 1) * self.n_source):
            u = self._source.at(j)
            if self.strategy == "source_only":
                kind = "source_audio"
            else:
                r = random.Random(f"{self.seed}-source-kind-{j}").random()
                kind = _SOURCE_KINDS[min(int(np.searchsorted(self._source_cum, r, side="right")), 2)]
            out.append((kind, u))
        return out

    def batch_at(self, step: int) -> list[Item]:
        """Batch number `step` (0-based), whatever has been drawn before."""
        if step < 0:
            raise ValueError(f"step={step}: must be >= 0")
        items = []
        for i, (kind, u) in enumerate(self.plan(step)):
            per_batch = self.n_target if kind.startswith("target_") else self.n_source
            offset = i if kind.startswith("target_") else i - self.n_target
            items.append(self._item(kind, u, step * per_batch + offset))
        return items

    def next_batch(self) -> list[Item]:
        items = self.batch_at(self.step)
        self.step += 1
        return items

    def batches(self, steps: int) -> Iterator[list[Item]]:
        """The next `steps` batches."""
        for _ in range(steps):
            yield self.next_batch()

    # ------------------------------------------------------------------ state
    def config(self) -> dict:
        return {
            "strategy": self.strategy,
            "p": self.p,
            "tau": self.tau,
            "batch_size": self.batch_size,
            "seed": self.seed,
            "subset_seed": self.subset_seed,
            "shares": asdict(self.shares),
            "corruption": self.corruption.to_dict(),
            "data": self._data_hash,
        }

    def state_dict(self) -> dict:
        return {"step": self.step, "config": self.config()}

    def load_state_dict(self, state: Mapping) -> None:
        """Resume at the saved step; fails, naming the parameter, if the sampler was built differently."""
        mine = self.config()
        saved = state.get("config", {})
        for key in mine:
            if saved.get(key) != mine[key]:
                raise ValueError(
                    f"load_state_dict: saved {key}={saved.get(key)!r} but this sampler has {key}={mine[key]!r}"
                )
        step = state.get("step")
        if not isinstance(step, int) or step < 0:
            raise ValueError(f"load_state_dict: step={step!r} must be a non-negative integer")
        self.step = step
