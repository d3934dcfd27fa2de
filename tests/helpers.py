"""Small model settings shared by the model, prompt and decoding tests."""

import random

from transformers import LlamaConfig

# a from-scratch log-mel encoder of 64 dims (the `tiny` encoder of mbasr/model/encoders.py): tests that
# need no pretrained weights use it in place of the tiny preset's Whisper
SCRATCH_ENCODER = {
    "encoder": {
        "name": "tiny",
        "hub_id": None,
        "local_path": None,
        "dim": 64,
        "window": None,
        "scratch": {
            "n_mels": 80,
            "d_model": 64,
            "n_layers": 1,
            "n_heads": 4,
            "d_ff": 128,
            "dropout": 0.1,
            "ctc_vocab": " abcdefghijklmnopqrstuvwxyz'",
        },
    },
    "stage0.encoder": {
        "train": ["encoder"],
        "optimizer": "adamw",
        "lr": 1.0e-3,
        "weight_decay": 0.01,
        "warmup_steps": 1,
        "decay_steps": None,
        "epochs": None,
        "steps": 2,
        "batch_size": 4,
        "eval_every": 2,
        "checkpoint_every": None,
        "grad_clip": 1.0,
    },
}

# the tiny preset scaled down further, so each test runs in well under a second
SMALLER = {
    **SCRATCH_ENCODER,
    "projector.hidden": 64,
    "llm.hidden": 64,
    "llm.scratch.vocab_size": 400,
    "llm.scratch.n_layers": 2,
    "llm.scratch.intermediate": 128,
    "stage0.tokenizer_vocab_size": 400,
}


def tiny_llama_config(vocab: int, hidden: int = 48) -> LlamaConfig:
    """A scaled-down Llama-3.2: grouped-query attention, tied embeddings, rope theta 5e5."""
    return LlamaConfig(
        vocab_size=vocab,
        hidden_size=hidden,
        intermediate_size=96,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=256,
        rope_theta=500000.0,
        tie_word_embeddings=True,
    )


# a small closed vocabulary: test tokenizers trained on it cover every word
WORDS = "the bank account balance transfer money card number today please check my claim policy".split()


def sentences(n: int, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    return [" ".join(rng.choice(WORDS) for _ in range(rng.randint(2, 9))) for _ in range(n)]
