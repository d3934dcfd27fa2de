"""Tokenizers: the named chat templates of the presets, and the byte-level BPE tokenizer of the tiny
from-scratch LLM (docs/paper.md "System", prompt: the Llama-3 chat template).

The tiny tokenizer uses Llama-3's special tokens and chat format, so `apply_chat_template` renders the
same turns as for Llama-3.2-Instruct; its end-of-turn token `<|eot_id|>` is its EOS, as in Llama-3
Instruct.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import PreTrainedTokenizerFast

# Llama-3 turns without a system turn: exactly the authors' prompt format (conf/prompt_llama.yaml,
# "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\n{prompt}<|eot_id|>
# <|start_header_id|>assistant<|end_header_id|>\n\n"); Llama-3.2's own template adds a dated system turn.
LLAMA3_TEMPLATE = (
    "{{ bos_token }}"
    "{% for message in messages %}"
    "{{ '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n' + message['content'] + '<|eot_id|>' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{% endif %}"
)
CHAT_TEMPLATES = {"llama3": LLAMA3_TEMPLATE}

BOS, EOT, EOS_TEXT, PAD = "<|begin_of_text|>", "<|eot_id|>", "<|end_of_text|>", "<|finetune_right_pad_id|>"
SPECIAL_TOKENS = [PAD, BOS, EOS_TEXT, "<|start_header_id|>", "<|end_header_id|>", EOT]


def chat_template(name: str | None) -> str | None:
    """The Jinja source of a named template (None: keep the tokenizer's own); unknown names fail."""
    if name is None:
        return None
    if name not in CHAT_TEMPLATES:
        raise KeyError(f"prompt.chat_template: unknown template {name!r}; known: {', '.join(CHAT_TEMPLATES)}")
    return CHAT_TEMPLATES[name]


def train_tokenizer(
    sentences: Iterable[str], vocab_size: int, out_dir: str | Path
) -> PreTrainedTokenizerFast:
    """Train a byte-level BPE tokenizer (Llama-3 special tokens and chat template) on `sentences` and
    save it to `out_dir` (loadable with `AutoTokenizer.from_pretrained(out_dir)`). Deterministic for
    the same sentences in the same order."""
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(list(sentences), trainer=trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token=BOS, eos_token=EOT, pad_token=PAD, clean_up_tokenization_spaces=False
    )
    fast.chat_template = LLAMA3_TEMPLATE
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    fast.save_pretrained(out_dir)
    return fast
