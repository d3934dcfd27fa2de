"""Modality-gap measures (mbasr/study/gap.py) on tiny random models: nearest-token reading recovers tokens whose
embeddings fill the slot, the layer gap is 0 when the slot holds the text's own embeddings and positive
for other vectors, the embedding map's frame is shared, deterministic and of the right shape."""

from __future__ import annotations

import copy

import matplotlib
import numpy as np
import pandas as pd
import pytest
import torch
from helpers import SMALLER, sentences

from mbasr.config import DecodingConfig, load_preset
from mbasr.data.manifest import Utterance
from mbasr.model import LLMItem, build_model
from mbasr.model.tokenizer import train_tokenizer
from mbasr.report.gap_plots import plot_embedding_map, plot_layer_gap
from mbasr.study.gap import (
    embedding_map,
    hypotheses_table,
    input_change,
    layer_distances,
    layer_gap,
    n_layers,
    nearest_ids,
    nearest_tokens,
    reading_table,
    speech_items,
)

matplotlib.use("Agg")
torch.set_num_threads(1)


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    tok = tmp_path_factory.mktemp("tok")
    train_tokenizer(sentences(300), 400, tok)
    return build_model(load_preset("tiny", SMALLER), tokenizer=tok).eval()


@pytest.fixture(scope="module")
def adapted(model):
    """The same model with a random (nonzero) LoRA: what stage 2 changes, and nothing else."""
    m = copy.deepcopy(model)
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for name, p in m.llm.named_parameters():
            if "lora_B" in name:
                p.copy_(0.5 * torch.randn(p.shape, generator=g))
    return m


def emb(model) -> torch.Tensor:
    return model.llm.get_input_embeddings().weight.detach()


def echo_items(model, texts: list[str]) -> list[LLMItem]:
    """Speech items whose slot holds exactly the token embeddings of their transcript."""
    return [LLMItem(target=t, proj=emb(model)[model.prompt.text_ids(t)].clone()) for t in texts]


def random_items(model, texts: list[str], seed: int = 0) -> list[LLMItem]:
    g = torch.Generator().manual_seed(seed)
    scale = float(emb(model).norm(dim=1).mean()) / model.llm.config.hidden_size**0.5
    return [
        LLMItem(target=t, proj=scale * torch.randn(3 + 2 * i, emb(model).shape[1], generator=g))
        for i, t in enumerate(texts)
    ]


def test_nearest_tokens_read_token_embeddings_back(model):
    text = "please check my card balance today"
    ids = model.prompt.text_ids(text)
    proj = emb(model)[ids]
    assert nearest_ids(model, proj).tolist() == ids
    assert nearest_tokens(model, proj) == [model.tokenizer.decode([i]) for i in ids]
    assert nearest_ids(model, proj, "argmin_dot").tolist() != ids  # the other mode: least similar tokens
    with pytest.raises(ValueError, match="mode"):
        nearest_tokens(model, proj, "farthest")
    table = reading_table({"base": model}, [LLMItem(target=text, proj=proj)], keys=["u0"])
    row = table.iloc[0]
    assert row["reading"] == model.tokenizer.decode(ids) and row["n_vectors"] == row["n_tokens"] == len(ids)
    assert row["cos_nearest"] == pytest.approx(1.0, abs=1e-5) and row["in_transcript"] == 1.0


def test_reading_of_random_vectors_is_far_from_tokens(model):
    table = reading_table(model, random_items(model, sentences(3, seed=2)))
    assert list(table["system"].unique()) == ["model"] and list(table["key"]) == ["utt0", "utt1", "utt2"]
    assert (table["cos_nearest"] < 0.9).all()


def test_layer_gap_zero_for_the_texts_own_embeddings_positive_otherwise(model):
    texts = sentences(5, seed=3)
    same = layer_distances(model, echo_items(model, texts), batch_size=3)  # padded batches of mixed lengths
    assert same.shape == (5, n_layers(model) + 1)
    assert np.abs(same).max() < 1e-5
    other = layer_distances(model, random_items(model, texts), batch_size=3)
    assert np.abs(other[:, 0]).max() < 1e-6  # layer 0 at the answer positions: the same answer tokens
    assert (other[:, 1:] > 1e-3).all()
    alone = layer_distances(model, random_items(model, texts), batch_size=1)
    np.testing.assert_allclose(alone, other, atol=1e-5)  # padding does not move the answer positions


def test_layer_gap_table_ci_and_determinism(model, adapted):
    items = random_items(model, sentences(6, seed=4))
    model.train()
    gap = layer_gap({"base": model, "adapted": adapted}, items, n_boot=200, seed=0, batch_size=4)
    assert model.training  # the caller's mode is restored
    model.eval()
    assert list(gap.columns) == ["system", "layer", "distance", "ci_low", "ci_high", "n_utts"]
    assert len(gap) == 2 * (n_layers(model) + 1) and (gap["n_utts"] == 6).all()
    assert (gap["ci_low"] <= gap["distance"] + 1e-12).all() and (
        gap["distance"] <= gap["ci_high"] + 1e-12
    ).all()
    deep = gap[gap["layer"] == n_layers(model)].set_index("system")["distance"]
    assert deep["base"] != pytest.approx(deep["adapted"])  # LoRA changes the states above the input
    again = layer_gap({"base": model, "adapted": adapted}, items, n_boot=200, seed=0, batch_size=4)
    pd.testing.assert_frame_equal(gap, again)
    fig = plot_layer_gap(gap)
    assert fig.axes[0].get_xlabel() and fig.axes[0].get_ylabel() and len(fig.axes[0].get_lines()) == 2


def test_embedding_map_shared_frame(model, adapted):
    texts = sentences(4, seed=5)
    items = random_items(model, texts)
    systems = {"base": model, "adapted": adapted}
    m = embedding_map(systems, items, keys=list("abcd"))
    assert list(m.columns) == ["system", "kind", "key", "position", "token", "x", "y", "norm"]
    n_speech = sum(len(it.proj) for it in items)
    n_text = sum(len(model.prompt.text_ids(t)) for t in texts)
    counts = m.groupby(["system", "kind"]).size()
    assert counts[("base", "speech")] == counts[("adapted", "speech")] == n_speech
    assert counts[("base", "text")] == counts[("adapted", "text")] == n_text
    e = m.attrs["explained"]
    assert m.attrs["layer"] == 0 and len(e) == 2 and e[0] >= e[1] > 0 and sum(e) <= 1
    base, ad = (m[m["system"] == s].reset_index(drop=True) for s in systems)
    np.testing.assert_allclose(base[["x", "y"]], ad[["x", "y"]], atol=1e-6)  # LoRA leaves the input alone
    pd.testing.assert_frame_equal(m, embedding_map(systems, items, keys=list("abcd")))
    deep = embedding_map(systems, items, layer=-1, normalize=True)
    assert deep.attrs["layer"] == n_layers(model)
    base, ad = (deep[deep["system"] == s].reset_index(drop=True) for s in systems)
    assert np.abs(base[["x", "y"]].to_numpy() - ad[["x", "y"]].to_numpy()).max() > 1e-3
    tc = input_change(systems, items).set_index("system")
    assert (tc[["projector_max_abs_change", "embedding_max_abs_change"]] == 0).all().all()
    assert np.abs(m[["x", "y"]].mean()).max() < 1e-8  # "pca": centred on every point of every system
    text_frame = embedding_map(systems, items, keys=list("abcd"), method="pca_text")
    text_points = text_frame[text_frame["kind"] == "text"]
    assert np.abs(text_points[["x", "y"]].mean()).max() < 1e-8  # "pca_text": centred on the text points
    assert np.abs(text_frame[text_frame["kind"] == "speech"][["x", "y"]].mean()).max() > 1e-3
    fig = plot_embedding_map(m)
    assert (
        len(fig.axes) == 2
        and fig.axes[0].get_title() == "base"
        and "principal axis 1" in fig.axes[0].get_xlabel()
    )
    with pytest.raises(ValueError, match="method"):
        embedding_map(systems, items, method="tsne")
    with pytest.raises(ValueError, match="layer"):
        embedding_map(systems, items, layer=n_layers(model) + 1)


def test_embedding_map_puts_echoed_text_on_its_tokens(model):
    m = embedding_map(model, echo_items(model, sentences(3, seed=6)), layer=2, method="pca_text")
    speech = m[m["kind"] == "speech"].reset_index(drop=True)
    text = m[m["kind"] == "text"].reset_index(drop=True)
    np.testing.assert_allclose(speech[["x", "y"]], text[["x", "y"]], atol=1e-4)
    assert list(speech["token"]) == list(text["token"])


def test_speech_items_and_hypotheses_from_frames(model):
    g = torch.Generator().manual_seed(0)
    utts = [Utterance(f"u{i}", f"/nowhere/u{i}.wav", s) for i, s in enumerate(sentences(3, seed=7))]
    feats = {u.key: torch.randn(9 + 3 * i, model.encoder.dim, generator=g) for i, u in enumerate(utts)}
    items = speech_items(utts, feats)
    assert [it.target for it in items] == [u.target for u in utts] and items[1].feats is feats["u1"]
    with pytest.raises(KeyError, match="u9"):
        speech_items([Utterance("u9", "/nowhere/u9.wav", "x")], feats)
    hyps = hypotheses_table(
        {"base": model}, utts, feats, DecodingConfig(max_new_tokens=4, num_beams=1, batch_size=2)
    )
    assert list(hyps.columns) == ["transcript", "base"] and list(hyps.index) == ["u0", "u1", "u2"]
    with pytest.raises(ValueError, match="hold text"):
        layer_distances(model, [LLMItem(target="x", text="x")])
