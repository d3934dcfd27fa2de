"""The prompt of docs/paper.md "System": the speech slot holds exactly the given vectors or token embeddings,
and only the transcript + EOS carry labels, for three chat templates and tokenizers."""

from __future__ import annotations

import random

import pytest
import torch
from helpers import tiny_llama_config
from transformers import AutoTokenizer, LlamaForCausalLM

from mbasr.config import PromptConfig
from mbasr.model.prompt import IGNORE, PromptBuilder
from mbasr.model.tokenizer import chat_template, train_tokenizer

torch.set_num_threads(1)

WORDS = (
    "the a bank account balance transfer money insurance policy claim doctor patient farm crop tractor "
    "guitar piano violin cartoon frame lecture please check my card number today tomorrow is was will be "
    "and or with for of to in on at by from"
).split()
INSTRUCTION = "Transcribe speech to text. Speech: <speech>."

# Llama-3.2-Instruct's template in short: a dated system turn is always added (date passed in for tests).
LLAMA32_TEMPLATE = (
    "{{ bos_token }}<|start_header_id|>system<|end_header_id|>\n\n"
    "Cutting Knowledge Date: December 2023\nToday Date: {{ date_string | default('26 Jul 2024') }}\n\n<|eot_id|>"
    "{% for message in messages %}"
    "{{ '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n' + message['content'] | trim + '<|eot_id|>' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{% endif %}"
)
# SmolLM2-Instruct's ChatML with its default system turn.
CHATML_TEMPLATE = (
    "{% for message in messages %}"
    "{% if loop.first and messages[0]['role'] != 'system' %}"
    "{{ '<|im_start|>system\nYou are a helpful AI assistant.<|im_end|>\n' }}{% endif %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)


def sentences(n: int, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    return [" ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 12))) for _ in range(n)]


@pytest.fixture(scope="module")
def tok_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("tok")
    train_tokenizer(sentences(300), 400, out)
    return out


@pytest.fixture(scope="module")
def tokenizer(tok_dir):
    return AutoTokenizer.from_pretrained(tok_dir)


def small_llama(vocab: int, hidden: int = 48) -> LlamaForCausalLM:
    torch.manual_seed(0)
    return LlamaForCausalLM(tiny_llama_config(vocab, hidden))


def setups(tok_dir):
    """(name, tokenizer, prompt config) for the three templates."""
    yield (
        "tiny-llama3",
        AutoTokenizer.from_pretrained(tok_dir),
        PromptConfig(INSTRUCTION, "<speech>", "llama3"),
    )
    tok32 = AutoTokenizer.from_pretrained(tok_dir)
    tok32.chat_template = LLAMA32_TEMPLATE
    yield "llama3.2-style", tok32, PromptConfig(INSTRUCTION, "<speech>", None)
    chatml = AutoTokenizer.from_pretrained(tok_dir)
    chatml.add_special_tokens({"additional_special_tokens": ["<|im_start|>", "<|im_end|>"]})
    chatml.eos_token = "<|im_end|>"
    chatml.chat_template = CHATML_TEMPLATE
    yield "chatml", chatml, PromptConfig(INSTRUCTION, "<speech>", None)


def test_slot_and_labels_for_each_template(tok_dir):
    rng = torch.Generator().manual_seed(0)
    texts = sentences(5, seed=1)
    for name, tok, pcfg in setups(tok_dir):
        model = small_llama(len(tok))
        embed = model.get_input_embeddings()
        pb = PromptBuilder(tok, pcfg)
        # the prefix and suffix render back to the template around the placeholder
        rendered = tok.apply_chat_template(
            [{"role": "user", "content": INSTRUCTION}],
            tokenize=False,
            add_generation_prompt=True,
            chat_template=chat_template(pcfg.chat_template),
        )
        assert tok.decode(pb.prefix_ids) + "<speech>" + tok.decode(pb.suffix_ids) == rendered, name
        speech = [torch.randn(n, 48, generator=rng) for n in (7, 2, 13)]
        text_ids = [pb.text_ids("blah " + texts[3]), pb.text_ids("")]
        slots = [speech[0], text_ids[0], speech[1], speech[2], text_ids[1]]
        answers = texts
        b = pb.build(embed, slots, answers)
        B, L, H = b.inputs_embeds.shape
        assert (B, H) == (5, 48) and b.labels.shape == (B, L) and b.attention_mask.shape == (B, L)
        with torch.no_grad():
            for i, (slot, ans) in enumerate(zip(slots, answers, strict=True)):
                start, n = b.slot_spans[i]
                row = b.inputs_embeds[i]
                if isinstance(slot, torch.Tensor):
                    assert n == slot.shape[0]
                    assert torch.equal(row[start : start + n], slot), (name, i)
                else:
                    assert n == len(slot)
                    assert torch.equal(row[start : start + n], embed(torch.tensor(slot, dtype=torch.long))), (
                        name,
                        i,
                    )
                P, S = len(pb.prefix_ids), len(pb.suffix_ids)
                assert torch.equal(row[start - P : start], embed(torch.tensor(pb.prefix_ids)))
                assert torch.equal(row[start + n : start + n + S], embed(torch.tensor(pb.suffix_ids)))
                # labels: exactly the transcript tokens + EOS, at the end; -100 everywhere else
                ans_ids = tok(ans, add_special_tokens=False).input_ids + [tok.eos_token_id]
                lab = b.labels[i]
                assert (lab[: L - len(ans_ids)] == IGNORE).all(), (name, i)
                assert lab[L - len(ans_ids) :].tolist() == ans_ids
                assert tok.decode(ans_ids[:-1]) == ans
                assert torch.equal(row[L - len(ans_ids) :], embed(torch.tensor(ans_ids)))
                # left padding: mask 0 before the prefix, positions count from the first real token
                pad = start - P
                assert b.attention_mask[i, :pad].sum() == 0 and b.attention_mask[i, pad:].all()
                assert b.position_ids[i, pad:].tolist() == list(range(L - pad))


def test_prompt_only_batch_ends_with_assistant_header(tokenizer):
    pcfg = PromptConfig(INSTRUCTION, "<speech>", "llama3")
    pb = PromptBuilder(tokenizer, pcfg)
    model = small_llama(len(tokenizer))
    b = pb.build(model.get_input_embeddings(), [torch.randn(4, 48), pb.text_ids("check my card")])
    assert b.labels is None
    assert tokenizer.decode(pb.suffix_ids).endswith("<|start_header_id|>assistant<|end_header_id|>\n\n")
    emb = model.get_input_embeddings()(torch.tensor(pb.suffix_ids))
    for i in range(2):
        assert torch.equal(b.inputs_embeds[i, -len(pb.suffix_ids) :], emb)


def test_placeholder_must_appear_once(tokenizer):
    with pytest.raises(ValueError, match="placeholder"):
        PromptBuilder(tokenizer, PromptConfig("Transcribe speech to text.", "<speech>", "llama3"))
    with pytest.raises(KeyError, match="unknown template"):
        PromptBuilder(tokenizer, PromptConfig(INSTRUCTION, "<speech>", "llama9"))
