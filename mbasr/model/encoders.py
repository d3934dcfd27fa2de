"""Speech encoders (docs/paper.md "System", speech encoder: frozen, its frames fed to the projector).

An explicit registry: `tiny` (from scratch, log-mel -> 2 stride-2 convs -> transformer, CTC head for its
stage-0 pretraining), `whisper` (the Hugging Face Whisper encoder), `wavlm` (WavLM, the paper's
encoder, input layer-normalised per utterance as in the paper). Every encoder maps a batch of 16 kHz
waveforms `(B, S)` with their lengths `(B,)` to `(feats (B, T, D), lengths (B,))`, `T` the longest real
length; frames beyond an utterance's length are padding.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn
from transformers import WavLMConfig, WavLMModel, WhisperConfig, WhisperFeatureExtractor, WhisperModel
from transformers.models.whisper.modeling_whisper import WhisperEncoder

from mbasr.config import EncoderConfig, ScratchEncoderConfig
from mbasr.io import stable_hash
from mbasr.model.hub import check_loading_info, quiet_loading, resolve_source, weights_hash

SAMPLE_RATE = 16000


class SpeechEncoder(nn.Module):
    """Base class: `forward(wavs (B, S), lengths (B,)) -> (feats (B, T, D), lengths (B,))`."""

    name: str
    dim: int  # D
    frame_samples: int  # input samples per output frame (derived from the architecture)

    def arch(self) -> dict:
        raise NotImplementedError

    def identity(self) -> str:
        """Name + architecture + weights: the key of cached features (changes when the weights do)."""
        return f"{self.name}-{stable_hash(self.arch(), 8)}-{weights_hash(self)}"


def freeze(module: nn.Module) -> nn.Module:
    """Frozen in use: no gradients, eval mode (no dropout)."""
    module.requires_grad_(False)
    return module.eval()


def lengths_mask(lengths: torch.Tensor, T: int) -> torch.Tensor:
    """(B,) lengths -> (B, T) bool, True on real positions."""
    return torch.arange(T, device=lengths.device)[None, :] < lengths[:, None]


# ---------------------------------------------------------------------------------------------------------
# tiny: from scratch


def mel_filterbank(n_mels: int, n_fft: int, sample_rate: int) -> torch.Tensor:
    """HTK-scale triangular mel filters, (n_fft // 2 + 1, n_mels)."""

    def hz_to_mel(f):
        return 2595.0 * math.log10(1.0 + f / 700.0)

    n_freq = n_fft // 2 + 1
    freqs = torch.linspace(0, sample_rate / 2, n_freq, dtype=torch.float64)
    mels = torch.linspace(hz_to_mel(0.0), hz_to_mel(sample_rate / 2), n_mels + 2, dtype=torch.float64)
    hz = 700.0 * (10 ** (mels / 2595.0) - 1.0)  # (n_mels + 2,) band edges
    lo, mid, hi = hz[:-2], hz[1:-1], hz[2:]
    up = (freqs[:, None] - lo[None, :]) / (mid - lo)[None, :]
    down = (hi[None, :] - freqs[:, None]) / (hi - mid)[None, :]
    return torch.clamp(torch.minimum(up, down), min=0.0).float()


class LogMel(nn.Module):
    """Waveform -> log-mel (25 ms window, 10 ms hop), normalised per utterance and bin over its real
    frames; padding frames are 0."""

    def __init__(self, n_mels: int, n_fft: int = 400, hop: int = 160):
        super().__init__()
        self.n_fft, self.hop = n_fft, hop
        self.register_buffer("window", torch.hann_window(n_fft), persistent=False)
        self.register_buffer("fbank", mel_filterbank(n_mels, n_fft, SAMPLE_RATE), persistent=False)

    @torch.autocast("cuda", enabled=False)
    @torch.autocast("cpu", enabled=False)
    def forward(self, wavs: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        wavs = wavs.float() * lengths_mask(lengths, wavs.shape[1])  # (B, S), samples beyond a length are 0
        # zero (not reflect) padding at the ends: frames do not depend on how much batch padding follows
        stft = dict(window=self.window, center=True, pad_mode="constant", return_complex=True)
        spec = torch.stft(wavs, self.n_fft, self.hop, **stft)  # (B, n_freq, T)
        power = spec.abs().pow(2).transpose(1, 2)  # (B, T, n_freq)
        x = torch.log(power @ self.fbank + 1e-6)  # (B, T, n_mels)
        n = lengths // self.hop + 1  # (B,) real frames (center=True)
        m = lengths_mask(n, x.shape[1])[..., None].float()  # (B, T, 1)
        mean = (x * m).sum(1, keepdim=True) / n[:, None, None]
        var = ((x - mean).pow(2) * m).sum(1, keepdim=True) / n[:, None, None]
        return (x - mean) / (var + 1e-5).sqrt() * m, n


def spec_augment(
    x: torch.Tensor,
    n: torch.Tensor,
    gen: torch.Generator,
    freq_masks: int = 2,
    max_freq: int = 15,
    time_share: float = 0.1,
    max_time: int = 20,
) -> torch.Tensor:
    """SpecAugment (Park et al., 2019) on normalised log-mel (B, T, n_mels): `freq_masks` bands of up to
    `max_freq` bins, and time masks of up to `max_time` frames covering about `time_share` of the real
    frames, set to 0 (the per-utterance mean). Regularises an encoder trained on few voices."""
    B, T, M = x.shape
    keep = torch.ones(B, T, M)
    for b in range(B):
        for _ in range(freq_masks):
            w = int(torch.randint(0, max_freq + 1, (1,), generator=gen))
            f0 = int(torch.randint(0, max(1, M - w), (1,), generator=gen))
            keep[b, :, f0 : f0 + w] = 0
        frames = int(n[b])
        for _ in range(int(frames * time_share / max_time * 2) + 1):
            w = int(torch.randint(0, max_time + 1, (1,), generator=gen))
            t0 = int(torch.randint(0, max(1, frames - w), (1,), generator=gen))
            keep[b, t0 : t0 + w] = 0
    return x * keep.to(x.device)


def sinusoids(T: int, d: int, device: torch.device) -> torch.Tensor:
    """(T, d) sinusoidal position encodings."""
    pos = torch.arange(T, device=device, dtype=torch.float32)[:, None]
    inv = torch.exp(-math.log(10000.0) * torch.arange(0, d, 2, device=device, dtype=torch.float32) / d)
    pe = torch.zeros(T, d, device=device)
    pe[:, 0::2], pe[:, 1::2] = torch.sin(pos * inv), torch.cos(pos * inv)
    return pe


class TinyEncoder(SpeechEncoder):
    """log-mel (100 fps) -> Conv1d stride 2 -> Conv1d stride 2 (25 fps, 40 ms) -> pre-norm transformer.
    `ctc_head` (characters + blank at 0) is used only to pretrain it (stage 0)."""

    name = "tiny"

    def __init__(self, cfg: ScratchEncoderConfig):
        super().__init__()
        self.cfg = cfg
        self.dim = cfg.d_model
        self.mel = LogMel(cfg.n_mels)
        self.frame_samples = self.mel.hop * 4
        self.conv1 = nn.Conv1d(cfg.n_mels, cfg.d_model, 3, stride=2, padding=1)
        self.conv2 = nn.Conv1d(cfg.d_model, cfg.d_model, 3, stride=2, padding=1)
        layer = nn.TransformerEncoderLayer(
            cfg.d_model,
            cfg.n_heads,
            cfg.d_ff,
            cfg.dropout,
            activation="gelu",
            batch_first=True,
            norm_first=True,
        )
        self.layers = nn.TransformerEncoder(layer, cfg.n_layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(cfg.d_model)
        self.vocab = cfg.ctc_vocab
        self.ctc_head = nn.Linear(cfg.d_model, len(cfg.ctc_vocab) + 1)

    def arch(self) -> dict:
        return {"scratch": vars(self.cfg)}

    def forward(
        self, wavs: torch.Tensor, lengths: torch.Tensor, augment: torch.Generator | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        x, n = self.mel(wavs, lengths)  # (B, T0, n_mels), (B,)
        if augment is not None:
            x = spec_augment(x, n, augment)
        x = F.gelu(self.conv1(x.transpose(1, 2)))  # (B, D, T1), T1 = ceil(T0 / 2)
        n = (n - 1) // 2 + 1
        x = x * lengths_mask(n, x.shape[2])[:, None, :]  # padding frames stay 0 for conv2
        x = F.gelu(self.conv2(x)).transpose(1, 2)  # (B, T, D), T = ceil(T1 / 2)
        n = (n - 1) // 2 + 1  # (B,) real frames
        x = x[:, : int(n.max())]
        x = x + sinusoids(x.shape[1], self.dim, x.device)
        x = self.layers(x, src_key_padding_mask=~lengths_mask(n, x.shape[1]))
        return self.norm(x), n  # (B, T, D), (B,)

    def ctc_targets(self, texts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """Lower-cased characters -> label ids (1-based; characters outside the vocab are dropped)."""
        index = {c: i + 1 for i, c in enumerate(self.vocab)}
        ids = [[index[c] for c in t.lower() if c in index] for t in texts]
        flat = torch.tensor([i for s in ids for i in s], dtype=torch.long)
        return flat, torch.tensor([len(s) for s in ids])

    def ctc_loss(
        self,
        wavs: torch.Tensor,
        lengths: torch.Tensor,
        texts: list[str],
        augment: torch.Generator | None = None,
    ) -> torch.Tensor:
        """CTC loss; with a generator `augment`, SpecAugment masks are drawn from it (stage 0)."""
        feats, n = self(wavs, lengths, augment)
        logp = self.ctc_head(feats).log_softmax(-1).transpose(0, 1)  # (T, B, V + 1)
        targets, target_lengths = self.ctc_targets(texts)
        return F.ctc_loss(logp, targets, n, target_lengths, blank=0, zero_infinity=True)

    @torch.no_grad()
    def ctc_greedy(self, wavs: torch.Tensor, lengths: torch.Tensor) -> list[str]:
        feats, n = self(wavs, lengths)
        best = self.ctc_head(feats).argmax(-1)  # (B, T)
        out = []
        for row, length in zip(best.tolist(), n.tolist(), strict=True):
            prev, chars = 0, []
            for i in row[:length]:
                if i != prev and i != 0:
                    chars.append(self.vocab[i - 1])
                prev = i
            out.append("".join(chars))
        return out


# ---------------------------------------------------------------------------------------------------------
# whisper


class WhisperSpeechEncoder(SpeechEncoder):
    """The Whisper encoder, on 20 ms frames: ceil(samples / 320) real frames per utterance.

    `window="full"` is how Whisper was trained: every input padded to the 30-s window (2 x
    max_source_positions mel frames), the output cut to the real length. `window="trimmed"` runs each
    utterance alone on its own length (padded only to a multiple of 320 samples), with the positional
    embeddings sliced to match: about 10x cheaper for 4-s utterances, its frames close to the full
    window's (cosine measured by tests/test_encoders_whisper.py). One utterance at a time, so that an
    utterance's frames never depend on the batch it was encoded in (the encoder has no padding mask)."""

    name = "whisper"

    def __init__(self, encoder: WhisperEncoder, window: str = "full"):
        super().__init__()
        cfg = encoder.config
        if window not in ("trimmed", "full"):
            raise ValueError(f"encoder.window={window!r}: choose trimmed or full")
        self.encoder = encoder
        self.window = window
        self.dim = cfg.d_model
        self.features = WhisperFeatureExtractor(feature_size=cfg.num_mel_bins)
        self.frame_samples = 2 * self.features.hop_length  # 320: conv2 has stride 2
        self.n_frames = cfg.max_source_positions
        self.max_samples = self.n_frames * self.frame_samples  # samples per 30-s window

    def arch(self) -> dict:
        # the window is part of the identity: full-window and trimmed frames never share a cache
        return {"hf": self.encoder.config.to_diff_dict(), "window": self.window}

    def _mel(self, audio: list, samples: int) -> torch.Tensor:
        return self.features(
            audio, sampling_rate=SAMPLE_RATE, return_tensors="pt", padding="max_length", max_length=samples
        ).input_features  # (B, n_mels, samples // 160)

    def _trimmed(self, mel: torch.Tensor) -> torch.Tensor:
        """WhisperEncoder.forward without its 3,000-frame check: (B, n_mels, 2T) -> (B, T, D)."""
        enc = self.encoder
        x = F.gelu(enc.conv2(F.gelu(enc.conv1(mel)))).permute(0, 2, 1)  # (B, T, D)
        x = x + enc.embed_positions.weight[: x.shape[1]]
        for layer in enc.layers:
            x = layer(x, None)
        return enc.layer_norm(x)

    def forward(self, wavs: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if int(lengths.max()) > self.max_samples:
            raise ValueError(
                f"mbasr/model/encoders.py: WhisperSpeechEncoder: {int(lengths.max())} samples exceed the "
                f"{self.max_samples}-sample window"
            )
        audio = [w[: int(n)].float().cpu().numpy() for w, n in zip(wavs, lengths, strict=True)]
        p = next(self.encoder.parameters())
        n = torch.div(lengths + self.frame_samples - 1, self.frame_samples, rounding_mode="floor")
        if self.window == "full":
            mel = self._mel(audio, self.max_samples)
            x = self.encoder(mel.to(p.device, p.dtype)).last_hidden_state  # (B, n_frames, D)
            return x[:, : int(n.max())], n.to(x.device)
        x = torch.zeros(len(audio), int(n.max()), self.dim, device=p.device, dtype=p.dtype)  # (B, T, D)
        for i, (a, t) in enumerate(zip(audio, n.tolist(), strict=True)):
            mel = self._mel([a], t * self.frame_samples)  # (1, n_mels, 2t)
            x[i, :t] = self._trimmed(mel.to(p.device, p.dtype))[0]
        return x, n.to(x.device)


# ---------------------------------------------------------------------------------------------------------
# wavlm


class WavLMSpeechEncoder(SpeechEncoder):
    """WavLM on the raw waveform, each utterance layer-normalised over its own samples (docs/paper.md System:
    "input layer-normalised"); last hidden layer; lengths from the conv feature extractor."""

    name = "wavlm"

    def __init__(self, model: WavLMModel):
        super().__init__()
        self.model = model
        self.dim = model.config.hidden_size
        self.frame_samples = math.prod(model.config.conv_stride)  # 320

    def arch(self) -> dict:
        return {"hf": self.model.config.to_diff_dict()}

    def forward(self, wavs: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        B, S = wavs.shape
        x = torch.zeros(B, S, device=wavs.device, dtype=torch.float32)  # (B, S)
        for i, n in enumerate(lengths.tolist()):
            x[i, :n] = F.layer_norm(wavs[i, :n].float(), (n,))
        mask = lengths_mask(lengths, S).long()
        # models with group-norm feature extractors (WavLM Base) must not get a mask: padding stays zero
        use_mask = self.model.config.feat_extract_norm == "layer"
        p = next(self.model.parameters())
        out = self.model(
            x.to(p.dtype), attention_mask=mask if use_mask else None
        ).last_hidden_state  # (B, T, D)
        n = self.model._get_feat_extract_output_lengths(lengths).long()
        return out[:, : int(n.max())], n.to(out.device)


# ---------------------------------------------------------------------------------------------------------
# registry


def _build_tiny(cfg: EncoderConfig, hf_config: None = None) -> SpeechEncoder:
    if hf_config is not None:
        raise ValueError("encoder 'tiny' takes its architecture from encoder.scratch, not an hf_config")
    return TinyEncoder(cfg.scratch)


def _build_whisper(cfg: EncoderConfig, hf_config: WhisperConfig | None = None) -> SpeechEncoder:
    if hf_config is not None:  # random weights (tests)
        return WhisperSpeechEncoder(WhisperEncoder(hf_config), cfg.window)
    src, local = resolve_source(cfg.hub_id, cfg.local_path, "encoder")
    with quiet_loading():
        model, info = WhisperModel.from_pretrained(src, local_files_only=local, output_loading_info=True)
    check_loading_info(info, "encoder", src, ignore_prefixes=("decoder.", "model.decoder.", "proj_out"))
    return WhisperSpeechEncoder(model.get_encoder(), cfg.window)


def _build_wavlm(cfg: EncoderConfig, hf_config: WavLMConfig | None = None) -> SpeechEncoder:
    if hf_config is not None:
        return WavLMSpeechEncoder(WavLMModel(hf_config))
    src, local = resolve_source(cfg.hub_id, cfg.local_path, "encoder")
    with quiet_loading():
        model, info = WavLMModel.from_pretrained(src, local_files_only=local, output_loading_info=True)
    check_loading_info(info, "encoder", src)
    return WavLMSpeechEncoder(model)


ENCODERS = {"tiny": _build_tiny, "whisper": _build_whisper, "wavlm": _build_wavlm}


def build_encoder(cfg: EncoderConfig, hf_config=None, frozen: bool = True) -> SpeechEncoder:
    """The encoder named by `cfg.name` (pretrained from hub_id/local_path, or random from `hf_config`, or
    from scratch); frozen unless `frozen=False` (stage-0 training of `tiny`)."""
    if cfg.name not in ENCODERS:
        raise KeyError(f"encoder.name: unknown encoder {cfg.name!r}; known: {', '.join(ENCODERS)}")
    enc = ENCODERS[cfg.name](cfg, hf_config)
    if enc.dim != cfg.dim:
        raise ValueError(f"encoder.dim is {cfg.dim} but the {cfg.name} encoder outputs {enc.dim}")
    return freeze(enc) if frozen else enc
