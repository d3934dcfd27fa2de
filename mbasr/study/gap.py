"""The modality gap (docs/paper.md "The idea in one paragraph"): at test time the LLM receives projected speech,
while text-only adaptation trains it on the token embeddings of (corrupted) text. How far apart are the
two inputs, and how far apart does the LLM keep them, layer by layer?

Three measures, each for any SpeechLLM (base or LoRA-adapted) of any preset. Each takes `systems`, one
model or a {name: model} mapping, and speech items (`LLMItem`s with `feats` or `proj`, the transcript as
`target`), and returns a tidy DataFrame with a `system` column:

    items = speech_items(utts, feats)                     # feats: mbasr.model.cache.encode_cached(...)
    reading_table(systems, items, keys)                   # 1. what the LLM "reads" in projected speech
    m = embedding_map(systems, items, keys, layer=0)      # 2. a shared 2-D picture, speech vs text
    plot_embedding_map(m)
    g = layer_gap(systems, items)                         # 3. per layer, speech vs text hidden states
    plot_layer_gap(g)

Layers are numbered as Hugging Face's `output_hidden_states`: 0 is the LLM's input (projected speech or
token embeddings), l the output of decoder block l; the last one is taken after the final norm.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager

import numpy as np
import torch
import torch.nn.functional as F

from mbasr.config import DecodingConfig
from mbasr.data.manifest import Utterance
from mbasr.method.corrupt import PROJECTOR_MODES, projector_tokens
from mbasr.model import LLMItem, SpeechLLM
from mbasr.model.decode import transcribe

MAP_METHODS = ("pca", "pca_text")
KINDS = ("speech", "text")
LEGEND = {"speech": "speech in the slot", "text": "its transcript in the slot (tokens)"}


# --------------------------------------------------------------------------------------------- inputs
def speech_items(utts: Sequence[Utterance], feats: Mapping[str, torch.Tensor]) -> list[LLMItem]:
    """One speech item per utterance: its cached encoder frames, its transcript as the target."""
    missing = [u.key for u in utts if u.key not in feats]
    if missing:
        raise KeyError(f"speech_items: no encoder frames for {missing[:5]} (encode them with encode_cached)")
    return [LLMItem(target=u.target, feats=feats[u.key]) for u in utts]


def text_item(item: LLMItem) -> LLMItem:
    """The text twin of a speech item: its clean transcript in the speech slot, the same answer."""
    return LLMItem(target=item.target, text=item.target)


def _systems(systems: SpeechLLM | Mapping[str, SpeechLLM]) -> dict[str, SpeechLLM]:
    out = {"model": systems} if isinstance(systems, SpeechLLM) else dict(systems)
    if not out:
        raise ValueError("systems: give a SpeechLLM or a non-empty {name: SpeechLLM} mapping")
    bad = [name for name, m in out.items() if not isinstance(m, SpeechLLM)]
    if bad:
        raise TypeError(f"systems: {bad} are not SpeechLLM models")
    return out


def _speech(items: Sequence[LLMItem]) -> list[LLMItem]:
    if not items:
        raise ValueError("items is empty")
    bad = [i for i, it in enumerate(items) if it.feats is None and it.proj is None]
    if bad:
        raise ValueError(f"items {bad[:5]} hold text; give speech items (feats or proj), e.g. speech_items()")
    return list(items)


def _keys(items: Sequence[LLMItem], keys: Sequence[str] | None) -> list[str]:
    if keys is None:
        return [f"utt{i}" for i in range(len(items))]
    if len(keys) != len(items):
        raise ValueError(f"keys: {len(keys)} keys for {len(items)} items")
    return list(keys)


@contextmanager
def _inference(model: SpeechLLM) -> Iterator[None]:
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            yield
    finally:
        model.train(was_training)


def _embedding(model: SpeechLLM) -> torch.Tensor:
    return model.llm.get_input_embeddings().weight  # (V, H)


def projected(model: SpeechLLM, items: Sequence[LLMItem]) -> list[torch.Tensor]:
    """Per speech item, what enters the speech slot: the projector's outputs (T_i, H), on the CPU."""
    with _inference(model):
        return [s.detach().float().cpu() for s in model.slots(_speech(items))]


# ------------------------------------------------------------------------------ 1. nearest tokens
def nearest_ids(model: SpeechLLM, proj: torch.Tensor, mode: str = "nearest") -> torch.Tensor:
    """(T,) token ids: for each projected vector (T, H), the vocabulary entry of highest cosine similarity
    ("nearest") or of lowest dot product ("argmin_dot", the authors' code), as `mbasr.method.corrupt`."""
    return projector_tokens(proj, _embedding(model), mode)


def nearest_tokens(model: SpeechLLM, proj: torch.Tensor, mode: str = "nearest") -> list[str]:
    """What the LLM "reads" in projected speech: each vector (T, H) replaced by its nearest token (cosine
    to the input-embedding matrix), decoded alone. The LLM never sees these tokens; they show how far the
    projector's vectors are from anything the LLM was trained to read."""
    return [model.tokenizer.decode([i]) for i in nearest_ids(model, proj, mode).tolist()]


def reading_table(
    systems: SpeechLLM | Mapping[str, SpeechLLM],
    items: Sequence[LLMItem],
    keys: Sequence[str] | None = None,
    mode: str = "nearest",
):
    """Per system and utterance: the transcript beside the nearest-token `reading` of its projected speech
    (the projector-noise text of `mode`), the slot lengths of speech (`n_vectors`) and text (`n_tokens`),
    `cos_nearest`: the mean cosine similarity of each vector to the token it is read as (1.0 for any
    text input: the gap in one number), and `in_transcript`: the share of vectors read as one of the
    transcript's own tokens."""
    import pandas as pd

    if mode not in PROJECTOR_MODES:
        raise ValueError(f"reading_table: mode={mode!r}: choose one of {PROJECTOR_MODES}")
    items = _speech(items)
    keys = _keys(items, keys)
    rows = []
    for name, model in _systems(systems).items():
        emb = _embedding(model).detach().float().cpu()
        for key, it, v in zip(keys, items, projected(model, items), strict=True):
            ids = nearest_ids(model, v, mode).cpu()
            tids = model.prompt.text_ids(it.target)
            cos = F.cosine_similarity(v, emb[ids], dim=-1)  # (T,): each vector vs the token it is read as
            rows.append(
                {
                    "system": name,
                    "key": key,
                    "transcript": it.target,
                    "reading": model.tokenizer.decode(ids.tolist()),
                    "n_vectors": len(ids),
                    "n_tokens": len(tids),
                    "cos_nearest": float(cos.mean()) if len(ids) else np.nan,
                    "in_transcript": float(np.isin(ids.numpy(), tids).mean()) if len(ids) else np.nan,
                }
            )
    return pd.DataFrame(rows)


def input_change(systems: SpeechLLM | Mapping[str, SpeechLLM], items: Sequence[LLMItem]):
    """Per system, the largest absolute change from the first system of what the LLM receives: the
    projector outputs of `items` and the input-embedding table. Both are 0 when stage 2 trained only LoRA
    inside the LLM: then readings and the layer-0 map are the same for every system, and adaptation can
    only act on the gap in the layers above."""
    import pandas as pd

    systems = _systems(systems)
    items = _speech(items)
    ref_name = next(iter(systems))
    ref_proj = projected(systems[ref_name], items)
    ref_emb = _embedding(systems[ref_name]).detach().float().cpu()
    rows = []
    for name, model in systems.items():
        proj = projected(model, items)
        emb = _embedding(model).detach().float().cpu()
        rows.append(
            {
                "system": name,
                "compared_to": ref_name,
                "projector_max_abs_change": max(
                    float((a - b).abs().max()) for a, b in zip(proj, ref_proj, strict=True)
                ),
                "embedding_max_abs_change": float((emb - ref_emb).abs().max())
                if emb.shape == ref_emb.shape
                else np.inf,
            }
        )
    return pd.DataFrame(rows)


# ---------------------------------------------------------------------------- hidden states (shared)
def _hidden_batches(
    model: SpeechLLM, items: list[LLMItem], with_answers: bool, batch_size: int
) -> Iterator[tuple[int, object, tuple[torch.Tensor, ...]]]:
    """Yields (first item index, PromptBatch, hidden states: n_layers + 1 tensors (B, L, H)) per batch.
    Run it inside `_inference(model)`."""
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size={batch_size!r} must be a positive integer")
    for start in range(0, len(items), batch_size):
        b = model.batch(items[start : start + batch_size], with_answers=with_answers)
        out = model.llm(
            inputs_embeds=b.inputs_embeds,
            attention_mask=b.attention_mask,
            position_ids=b.position_ids,
            output_hidden_states=True,
            logits_to_keep=1,  # the output layer is not needed
            use_cache=False,
        )
        yield start, b, out.hidden_states


def n_layers(model: SpeechLLM) -> int:
    """The number of decoder blocks: hidden-state layers are 0 (input) to n_layers."""
    return int(model.llm.get_base_model().config.num_hidden_layers)


def _check_layer(model: SpeechLLM, layer: int) -> int:
    n = n_layers(model)
    if not -(n + 1) <= layer <= n:
        raise ValueError(f"layer={layer}: the model has hidden-state layers 0..{n} (or -1 for the last)")
    return layer % (n + 1)


def slot_states(
    model: SpeechLLM, items: Sequence[LLMItem], layer: int = 0, batch_size: int = 8
) -> list[torch.Tensor]:
    """Per item, the hidden states (slot length, H) of its speech slot at `layer`, on the CPU: at layer 0
    the projected speech or the text's token embeddings themselves."""
    layer = _check_layer(model, layer)
    items = list(items)
    out: list[torch.Tensor] = []
    with _inference(model):
        for _, b, hs in _hidden_batches(model, items, with_answers=False, batch_size=batch_size):
            h = hs[layer]  # (B, L, H)
            out.extend(h[i, s : s + n].float().cpu() for i, (s, n) in enumerate(b.slot_spans))
    return out


# ------------------------------------------------------------------------------- 2. embedding map
def _fit_2d(x: np.ndarray, fit: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """PCA by SVD: 2-D coordinates of the rows of `x` in the top two principal axes of the rows of
    `fit`, each axis signed so that its largest loading is positive (deterministic); and the share of
    the fitted rows' variance each axis holds."""
    if len(fit) < 3:
        raise ValueError(f"embedding_map: {len(fit)} points to fit a 2-D projection on; need at least 3")
    mean = fit.mean(0)
    _, s, vt = np.linalg.svd(fit - mean, full_matrices=False)
    comps = vt[:2]  # (2, H)
    signs = np.sign(comps[np.arange(2), np.abs(comps).argmax(1)])
    comps = comps * signs[:, None]
    var = s**2
    return (x - mean) @ comps.T, var[:2] / var.sum()


def embedding_map(
    systems: SpeechLLM | Mapping[str, SpeechLLM],
    items: Sequence[LLMItem],
    keys: Sequence[str] | None = None,
    layer: int = 0,
    method: str = "pca",
    normalize: bool = False,
    batch_size: int = 8,
):
    """A 2-D picture of the modality gap: the speech-slot vectors of each utterance (kind "speech") and
    the token vectors of its transcript in the same slot (kind "text"), at `layer` (0: projector outputs
    against token embeddings), all systems in one shared frame so their pictures compare.

    The frame is a principal-component projection fitted once on the points of every system ("pca") or
    on the text points only ("pca_text": the LLM's own text space, speech placed into it); with
    `normalize`, vectors are scaled to unit length first (the cosine geometry of nearest-token reading).
    Returns columns system, kind, key, position, token, x, y, norm (the vector's length before any
    scaling); `attrs` hold layer, method, normalize and `explained` (variance share of each axis).
    Speech points carry the token they are read as (`nearest_tokens` of the projector output)."""
    import pandas as pd

    if method not in MAP_METHODS:
        raise ValueError(f"embedding_map: method={method!r}: choose one of {MAP_METHODS}")
    systems = _systems(systems)
    layer = _check_layer(next(iter(systems.values())), layer)
    items = _speech(items)
    keys = _keys(items, keys)
    texts = [text_item(it) for it in items]
    rows, vecs = [], []
    for name, model in systems.items():
        speech = slot_states(model, items, layer, batch_size)
        text = slot_states(model, texts, layer, batch_size)
        for key, it, proj, hs, ht in zip(keys, items, projected(model, items), speech, text, strict=True):
            labels = {
                "speech": nearest_tokens(model, proj),
                "text": [model.tokenizer.decode([i]) for i in model.prompt.text_ids(it.target)],
            }
            for kind, h in (("speech", hs), ("text", ht)):
                for pos, (tok, v) in enumerate(zip(labels[kind], h, strict=True)):
                    rows.append({"system": name, "kind": kind, "key": key, "position": pos, "token": tok})
                    vecs.append(v)
    x = torch.stack(vecs).double().numpy()  # (N, H)
    norm = np.linalg.norm(x, axis=1)
    if normalize:
        x = x / np.maximum(norm, 1e-12)[:, None]
    df = pd.DataFrame(rows)
    fit = x if method == "pca" else x[(df["kind"] == "text").to_numpy()]
    xy, explained = _fit_2d(x, fit)
    df["x"], df["y"], df["norm"] = xy[:, 0], xy[:, 1], norm
    df.attrs.update(
        {
            "layer": layer,
            "method": method,
            "normalize": normalize,
            "explained": [float(e) for e in explained],
        }
    )
    return df


# ---------------------------------------------------------------------------------- 3. layer gap
def layer_distances(model: SpeechLLM, items: Sequence[LLMItem], batch_size: int = 8) -> np.ndarray:
    """(n_items, n_layers + 1): for each utterance and layer, the mean cosine distance (1 - cosine
    similarity) between the hidden states of its speech input and of its transcript as text input, at
    the positions that predict the answer (the last prompt token and the answer tokens, teacher-forced).
    Both runs predict the same answer tokens, so these positions align one to one, whatever the slot
    lengths; at layer 0 they hold the same token embeddings (distance 0), and above it the distance is
    how differently the LLM's state carries the two inputs while writing the same transcript."""
    items = _speech(items)
    texts = [text_item(it) for it in items]
    n = n_layers(model)
    out = np.zeros((len(items), n + 1))
    answer_len = [len(model.prompt.answer_ids(it.target)) for it in items]  # answer tokens + EOS
    with _inference(model):
        speech = _hidden_batches(model, items, with_answers=True, batch_size=batch_size)
        text = _hidden_batches(model, texts, with_answers=True, batch_size=batch_size)
        for (start, _, hs), (_, _, ht) in zip(speech, text, strict=True):
            for j in range(hs[0].shape[0]):  # hs, ht: n + 1 tensors (B, L, H), answers right-aligned
                a = answer_len[start + j]
                s = torch.stack(
                    [h[j, -a - 1 : -1] for h in hs]
                ).float()  # (n + 1, a, H): predict answer + EOS
                t = torch.stack([h[j, -a - 1 : -1] for h in ht]).float()
                dist = (1 - F.cosine_similarity(s, t, dim=-1)).clamp(min=0)  # rounding can give -1e-8
                out[start + j] = dist.mean(-1).cpu().numpy()
    return out


def layer_gap(
    systems: SpeechLLM | Mapping[str, SpeechLLM],
    items: Sequence[LLMItem],
    n_boot: int = 1000,
    seed: int = 0,
    batch_size: int = 8,
):
    """Per system and LLM layer, the modality gap inside the LLM: the mean over utterances of
    `layer_distances` (speech vs text input of the same utterance, at the answer positions) with a 95%
    bootstrap confidence interval over utterances (the same resamples for every system). A system whose
    curve lies lower processes speech more like text by the time it writes the transcript."""
    import pandas as pd

    items = _speech(items)
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(items), size=(n_boot, len(items)))  # (n_boot, n_items)
    frames = []
    for name, model in _systems(systems).items():
        d = layer_distances(model, items, batch_size)  # (n_items, n_layers + 1)
        boot = d[idx].mean(1)  # (n_boot, n_layers + 1)
        frames.append(
            pd.DataFrame(
                {
                    "system": name,
                    "layer": np.arange(d.shape[1]),
                    "distance": d.mean(0),
                    "ci_low": np.percentile(boot, 2.5, axis=0),
                    "ci_high": np.percentile(boot, 97.5, axis=0),
                    "n_utts": len(items),
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


# ------------------------------------------------------------------------------------- hypotheses
def hypotheses_table(
    systems: SpeechLLM | Mapping[str, SpeechLLM],
    utts: Sequence[Utterance],
    feats: Mapping[str, torch.Tensor],
    decoding: DecodingConfig,
    precision: str | None = None,
):
    """Per utterance (index: key): the transcript and each system's hypothesis, decoded with the
    preset's `decoding` settings and `precision` (`mbasr.model.decode.transcribe`)."""
    import pandas as pd

    table = pd.DataFrame({"key": [u.key for u in utts], "transcript": [u.target for u in utts]}).set_index(
        "key"
    )
    for name, model in _systems(systems).items():
        table[name] = transcribe(
            model,
            list(utts),
            feats,
            decoding.batch_size,
            decoding.max_new_tokens,
            decoding.num_beams,
            precision=precision,
        )
    return table
