"""Small model settings shared by the model, prompt and decoding tests."""

import random

from transformers import LlamaConfig

# the tiny preset scaled down further, so each test runs in well under a second
SMALLER = {
    "encoder.dim": 64,
    "encoder.scratch.d_model": 64,
    "encoder.scratch.n_layers": 1,
    "encoder.scratch.d_ff": 128,
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
