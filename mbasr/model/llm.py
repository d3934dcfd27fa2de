"""The causal LM and its LoRA (docs/paper.md "System": frozen Llama-3.2-3B-Instruct; adaptation trains LoRA
r=16, alpha=32, dropout 0.05 on q_proj and v_proj only).

`load_llm` gives (model, tokenizer): a small Llama from scratch (`llm.scratch`, with the tokenizer trained
by `mbasr.model.tokenizer.train_tokenizer`), a random model from a given config (tests), or a pretrained
`AutoModelForCausalLM` from a local folder (`local_files_only`) or a hub id. `add_lora` freezes the base
model and wraps it with peft LoRA.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import torch
from peft import LoraConfig as PeftLoraConfig
from peft import PeftModel, get_peft_model
from transformers import AutoModelForCausalLM, AutoTokenizer, LlamaConfig, LlamaForCausalLM, PretrainedConfig

from mbasr.config import LLMConfig, LoraConfig, ScratchLLMConfig
from mbasr.model.hub import check_loading_info, quiet_loading, resolve_source


def scratch_llama(cfg: ScratchLLMConfig, hidden: int, tokenizer) -> LlamaForCausalLM:
    """A randomly initialised Llama of the `llm.scratch` sizes (seed the RNG before calling)."""
    if len(tokenizer) > cfg.vocab_size:
        raise ValueError(
            f"llm.scratch.vocab_size is {cfg.vocab_size} but the tokenizer has {len(tokenizer)} tokens"
        )
    config = LlamaConfig(
        vocab_size=cfg.vocab_size,
        hidden_size=hidden,
        intermediate_size=cfg.intermediate,
        num_hidden_layers=cfg.n_layers,
        num_attention_heads=cfg.n_heads,
        num_key_value_heads=cfg.n_kv_heads,
        max_position_embeddings=cfg.max_positions,
        rope_theta=cfg.rope_theta,
        tie_word_embeddings=cfg.tie_embeddings,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    # Eager attention: as fast as SDPA at these sizes on CPU, and its masked rows stay finite on a GPU
    # (the left-padded stage-0 LM went NaN with SDPA in bfloat16 on an H200).
    config._attn_implementation = "eager"
    return LlamaForCausalLM(config)


def load_tokenizer(source: str | Path, local: bool = True):
    tok = AutoTokenizer.from_pretrained(str(source), local_files_only=local)
    if tok.eos_token_id is None:
        raise ValueError(f"tokenizer {source!r} has no eos_token: the answer must end with EOS")
    if tok.pad_token_id is None:
        tok.pad_token = tok.eos_token  # padding is masked out; generate needs an id
    return tok


def load_llm(
    cfg: LLMConfig,
    tokenizer=None,
    hf_config: PretrainedConfig | None = None,
    dtype: torch.dtype = torch.float32,
):
    """(model, tokenizer). From scratch (`cfg.scratch`, `tokenizer` required), random from `hf_config`
    (`tokenizer` required), or pretrained from `cfg.local_path` / `cfg.hub_id`."""
    if isinstance(tokenizer, (str, Path)):
        tokenizer = load_tokenizer(tokenizer)
    if cfg.scratch is not None or hf_config is not None:
        if tokenizer is None:
            raise ValueError(
                "llm: a from-scratch or random LLM needs a tokenizer (train one with "
                "mbasr.model.tokenizer.train_tokenizer and pass it, or its folder, as `tokenizer`)"
            )
        if hf_config is not None:
            model = AutoModelForCausalLM.from_config(hf_config)
        else:
            model = scratch_llama(cfg.scratch, cfg.hidden, tokenizer)
        model = model.to(dtype)
    else:
        src, local = resolve_source(cfg.hub_id, cfg.local_path, "llm")
        tokenizer = tokenizer if tokenizer is not None else load_tokenizer(src, local)
        with quiet_loading():
            model, info = AutoModelForCausalLM.from_pretrained(
                src, local_files_only=local, dtype=dtype, output_loading_info=True
            )
        check_loading_info(info, "llm", src)
    if model.config.hidden_size != cfg.hidden:
        raise ValueError(
            f"llm.hidden is {cfg.hidden} but the model's hidden_size is {model.config.hidden_size}"
        )
    if model.get_input_embeddings().num_embeddings < len(tokenizer):
        raise ValueError(
            f"llm: the tokenizer has {len(tokenizer)} tokens, the model embeds only "
            f"{model.get_input_embeddings().num_embeddings}"
        )
    if cfg.gradient_checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    return model, tokenizer


def add_lora(model, cfg: LoraConfig) -> PeftModel:
    """Freeze every base weight and add LoRA adapters (B initialised to 0: the model is unchanged)."""
    model.requires_grad_(False)
    lora = PeftLoraConfig(
        r=cfg.r,
        lora_alpha=cfg.alpha,
        lora_dropout=cfg.dropout,
        target_modules=list(cfg.target_modules),
        bias="none",
        task_type="CAUSAL_LM",
    )
    with warnings.catch_warnings():  # peft reads transformers' deprecated alias; nothing for us to change
        warnings.filterwarnings("ignore", "`is_gradient_checkpointing` is deprecated", FutureWarning)
        return get_peft_model(model, lora)
