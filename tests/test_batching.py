"""The mixed-batch sampler (mbasr.method.mixed_batch): component shares, the p audio subset, strategies, epochs,
determinism, resumption and early failures."""

import json
import random
from collections import Counter

import pytest

from mbasr.data.manifest import Utterance, subset
from mbasr.method.composition import composition, measured_shares
from mbasr.method.corrupt import CorruptionConfig, corrupt
from mbasr.method.mixed_batch import (
    KINDS,
    MixedBatchSampler,
    resolve_shares,
)


def _utts(prefix, n, audio=True):
    return [
        Utterance(
            f"{prefix}{i:04d}",
            f"/audio/{prefix}{i}.wav" if audio else "",
            f"{prefix} words number {i} here",
            1.0,
        )
        for i in range(n)
    ]


SOURCE = _utts("src", 300)
TARGET = _utts("tgt", 200)


def _proj(u):
    return f"projected {u.key}"


def _mixed(p, **kw):
    strategy = "text_only" if p == 0 else "mixed"
    return MixedBatchSampler(
        SOURCE, TARGET, strategy, p=p, seed=kw.pop("seed", 0), projector_text=_proj, **kw
    )


def test_shares_from_p_and_tau():
    s = resolve_shares("mixed", p=0.2, tau=0.5)
    assert (s.tau_a, s.tau_t) == pytest.approx((0.1, 0.4))
    assert (s.sigma_a, s.sigma_ta, s.sigma_t) == pytest.approx((1 / 6, 1 / 6, 1 / 6))
    assert sum(s.by_kind().values()) == pytest.approx(1.0)
    s = resolve_shares("mixed", p=1.0, tau=0.4, sigmas={"sigma_a": 0.6, "sigma_ta": 0.0, "sigma_t": 0.0})
    assert (s.sigma_a, s.tau_a, s.tau_t) == pytest.approx((0.6, 0.4, 0.0))
    assert resolve_shares("asr", p=0.3, tau=0.5).tau_a == 1.0
    assert resolve_shares("source_only", p=0.0, tau=0.5).sigma_a == 1.0


@pytest.mark.parametrize(
    "args, name",
    [
        (("mixed", 1.2, 0.5, None), "p="),
        (("mixed", -0.1, 0.5, None), "p="),
        (("mixed", 0.2, 1.5, None), "tau="),
        (("mixed", 0.2, 0.5, (0.2, 0.2, 0.2)), "sum to"),
        (("mixed", 0.2, 0.5, {"sigma_a": 0.5}), "sigmas"),
        (("mixed", 0.2, 0.5, (0.6, -0.1, 0.0)), "sigma_ta"),
        (("mixed", 0.0, 0.5, None), "p=0"),
        (("text_only", 0.2, 0.5, None), "p=0.2"),
        (("asr", 0.0, 0.5, None), "p=0"),
        (("asr", 0.2, 0.5, (0.5, 0, 0)), "sigmas"),
        (("bogus", 0.2, 0.5, None), "strategy"),
    ],
)
def test_bad_settings_name_the_parameter(args, name):
    with pytest.raises(ValueError, match=name):
        resolve_shares(*args)


def test_sampler_fails_early():
    with pytest.raises(ValueError, match="target: empty manifest"):
        MixedBatchSampler(SOURCE, [], "mixed", p=0.2, projector_text=_proj)
    with pytest.raises(ValueError, match="source: empty manifest"):
        MixedBatchSampler([], TARGET, "mixed", p=0.2, projector_text=_proj)
    with pytest.raises(ValueError, match="p=0.2: the target domain has no audio"):
        MixedBatchSampler(SOURCE, _utts("tgt", 50, audio=False), "mixed", p=0.2, projector_text=_proj)
    with pytest.raises(ValueError, match="sigma_ta"):
        MixedBatchSampler(SOURCE, TARGET, "mixed", p=0.2)
    with pytest.raises(ValueError, match="sigma_a"):
        MixedBatchSampler(_utts("src", 20, audio=False), TARGET, "mixed", p=0.2, projector_text=_proj)
    with pytest.raises(ValueError, match="batch_size"):
        MixedBatchSampler(SOURCE, TARGET, "mixed", p=0.2, batch_size=0, projector_text=_proj)
    with pytest.raises(ValueError, match="duplicate"):
        MixedBatchSampler(SOURCE, TARGET + TARGET[:1], "mixed", p=0.2, projector_text=_proj)
    # without projector noise, no projector_text is needed; text-only target works without audio
    s = MixedBatchSampler(SOURCE, _utts("tgt", 50, audio=False), "text_only", sigmas=(0.25, 0.0, 0.25))
    assert all(it.kind != "projector_noise" for b in s.batches(20) for it in b)


@pytest.mark.parametrize("p", [0.0, 0.1, 0.2, 1.0])
def test_component_shares_over_1000_batches(p):
    s = _mixed(p)
    batches = list(s.batches(1000))
    comp = composition(batches)
    assert comp.shape == (1000, 10)
    want = s.shares.by_kind()
    counts = Counter(it.kind for b in batches for it in b)
    for kind in KINDS:
        assert abs(counts[kind] / 10_000 - want[kind]) < 0.01, (kind, counts[kind], want[kind])
    assert measured_shares(_mixed(p), 1000) == pytest.approx({k: counts[k] / 10_000 for k in KINDS})
    # every batch: round(tau * B) = 5 target items first, then 5 source items
    assert all(sum(it.is_target for it in b) == 5 and all(it.is_target for it in b[:5]) for b in batches)


@pytest.mark.parametrize("p", [0.1, 0.2, 1.0])
def test_only_the_p_subset_is_ever_audio(p):
    s = _mixed(p)
    audio_keys = {u.key for u in subset(TARGET, p, 0)}
    assert {u.key for u in s.audio_subset} == audio_keys and len(audio_keys) == round(p * len(TARGET))
    for b in s.batches(200):
        for it in b:
            if it.is_target:
                assert (it.kind == "target_audio") == (it.utt.key in audio_keys)
                assert (it.text_input is None) == it.is_audio


def test_items_carry_inputs():
    s = _mixed(0.2)
    for it in s.next_batch():
        if it.kind in ("target_text", "source_text"):
            assert it.text_input and it.text_input != it.utt.target
            assert len(it.text_input.split()) == len(it.utt.target.split())
        elif it.kind == "projector_noise":
            assert it.text_input == f"projected {it.utt.key}"
        else:
            assert it.text_input is None
    echo = _mixed(0.2, corruption=CorruptionConfig(mode="echo")).next_batch()
    assert all(it.text_input == it.utt.target for it in echo if it.kind.endswith("_text"))
    empty = _mixed(0.2, corruption=CorruptionConfig(mode="empty")).next_batch()
    assert all(it.text_input == "" for it in empty if it.kind.endswith("_text"))


def test_one_epoch_is_one_pass_over_the_target():
    s = _mixed(0.2)
    assert s.steps_per_epoch == 40 and s.steps_for_epochs(5) == 200
    seen = Counter(it.utt.key for b in s.batches(s.steps_per_epoch) for it in b if it.is_target)
    assert set(seen) == {u.key for u in TARGET} and set(seen.values()) == {1}
    assert s.epoch == pytest.approx(1.0)


def test_asr_is_target_audio_from_the_same_nested_subset():
    s = MixedBatchSampler(None, TARGET, "asr", p=0.2, seed=0)
    keys = {u.key for u in subset(TARGET, 0.2, 0)}
    items = [it for b in s.batches(30) for it in b]
    assert {it.kind for it in items} == {"target_audio"} and {it.utt.key for it in items} <= keys
    assert s.steps_per_epoch == 4  # 40 subset utterances, 10 a batch
    small = {u.key for u in MixedBatchSampler(None, TARGET, "asr", p=0.1, seed=0).audio_subset}
    assert small < keys
    mb = MixedBatchSampler(SOURCE, TARGET, "mixed", p=0.2, seed=5, subset_seed=0, projector_text=_proj)
    assert {u.key for u in mb.audio_subset} == keys


def test_source_only():
    s = MixedBatchSampler(SOURCE, None, "source_only", seed=0)
    items = [it for b in s.batches(30) for it in b]
    assert {it.kind for it in items} == {"source_audio"} and len(items) == 300
    assert len({it.utt.key for it in items}) == 300 and s.epoch == pytest.approx(1.0)


def _as_tuples(batches):
    return [[(it.kind, it.utt.key, it.text_input) for it in b] for b in batches]


def test_deterministic_and_input_order_free():
    a = _as_tuples(_mixed(0.2, seed=3).batches(50))
    random.Random(0).shuffle(shuffled_t := list(TARGET))
    random.Random(1).shuffle(shuffled_s := list(SOURCE))
    b = MixedBatchSampler(shuffled_s, shuffled_t, "mixed", p=0.2, seed=3, projector_text=_proj)
    assert _as_tuples(b.batches(50)) == a
    assert _as_tuples(_mixed(0.2, seed=4).batches(50)) != a
    # corrupted text is the seeded corruption of the transcript
    # (a fresh draw at each stream position: an utterance seen again in a later epoch is re-corrupted)
    i, it = next((i, it) for i, it in enumerate(_mixed(0.2, seed=3).batch_at(2)) if it.kind == "target_text")
    assert it.text_input == corrupt(it.utt.target, seed=f"3-target-text-{2 * 5 + i}")


def test_resume_draws_the_same_remaining_batches():
    full = _as_tuples(_mixed(0.2, seed=1).batches(120))
    s = _mixed(0.2, seed=1)
    list(s.batches(47))
    state = json.loads(json.dumps(s.state_dict()))
    resumed = _mixed(0.2, seed=1)
    resumed.load_state_dict(state)
    assert resumed.step == 47
    assert _as_tuples(resumed.batches(73)) == full[47:]
    with pytest.raises(ValueError, match="p="):
        _mixed(0.1, seed=1).load_state_dict(state)
    with pytest.raises(ValueError, match="seed="):
        _mixed(0.2, seed=2).load_state_dict(state)
    with pytest.raises(ValueError, match="data="):
        MixedBatchSampler(SOURCE, TARGET[:100], "mixed", p=0.2, seed=1, projector_text=_proj).load_state_dict(
            state
        )


def test_rounding_of_tau_times_batch_size_warns():
    with pytest.warns(UserWarning, match="round"):
        s = MixedBatchSampler(SOURCE, TARGET, "mixed", p=0.2, tau=0.5, batch_size=7, projector_text=_proj)
    assert s.n_target == 4 and all(len(b) == 7 for b in s.batches(5))
