"""The preset's `precision` as an autocast context (mbasr/model/precision.py): bfloat16 on CUDA only,
explicitly off everywhere else."""

from __future__ import annotations

import warnings

import pytest
import torch

from mbasr.model.precision import autocast


def _matmul_dtype(ctx) -> torch.dtype:
    a = torch.ones(2, 2, device=ctx.device)
    with ctx:
        return (a @ a).dtype


@pytest.mark.parametrize("precision", ["float32", "bfloat16", None])
def test_cpu_runs_in_the_parameters_dtype(precision):
    ctx = autocast(torch.device("cpu"), precision)
    assert ctx.device == "cpu" and not ctx._enabled
    # off even inside an outer bfloat16 autocast: a preset's precision is not overridden by a caller's
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert (torch.ones(2, 2) @ torch.ones(2, 2)).dtype == torch.bfloat16  # the outer one is on
        assert _matmul_dtype(ctx) == torch.float32


def test_cuda_bfloat16_autocasts_and_float32_does_not():
    with warnings.catch_warnings():  # on a machine without CUDA, torch warns and disables the context
        warnings.simplefilter("ignore", UserWarning)
        bf16 = autocast("cuda", "bfloat16")
        f32 = autocast(torch.device("cuda:0"), "float32")
    assert bf16.device == "cuda" and bf16.fast_dtype == torch.bfloat16
    assert f32.device == "cuda" and not f32._enabled


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_matmul_dtypes():
    assert _matmul_dtype(autocast("cuda", "bfloat16")) == torch.bfloat16
    assert _matmul_dtype(autocast("cuda", "float32")) == torch.float32
