"""int8 weights: a run's large tables stored as int8 with one float16 scale per row.

    seqlab export RUN --quantize --out RUN-int8   # runs.quantize_run: a run directory, about a quarter of the size

A quantized run is an ordinary run directory (config.json, encoder.json, model.safetensors):
each float table of at least MIN_ELEMENTS values is saved as ``NAME.int8`` (rows, columns) int8
and ``NAME.scale`` (rows,) float16, row r being ``int8[r] * scale[r]``; smaller tensors (biases,
the output layer) stay float32. `dequantize_state` turns them back into float tensors when the
run is loaded (runs.load_run), so the Predictor, `seqlab serve` and `seqlab evaluate` read it
as any run.
"""

from __future__ import annotations

import torch

from seqlab.errors import RunError

INT8, SCALE = ".int8", ".scale"
MIN_ELEMENTS = 4096  # tensors smaller than this stay float32: too small to matter, often sensitive (the head)
LEVELS = 127  # int8 values run from -LEVELS to LEVELS (symmetric: 0 stays exactly 0)


def quantize_state(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """`state` with each large 2-D float tensor as NAME.int8 + NAME.scale (per-row absolute maximum / 127)."""
    out: dict[str, torch.Tensor] = {}
    for name, tensor in state.items():
        if tensor.dim() != 2 or not tensor.is_floating_point() or tensor.numel() < MIN_ELEMENTS:
            out[name] = tensor
            continue
        weights = tensor.detach().float().cpu()  # (rows, columns)
        scale = (weights.abs().amax(dim=1) / LEVELS).to(torch.float16).float()  # (rows,), as it will be stored
        scale = torch.where(scale > 0, scale, torch.ones_like(scale))  # an all-zero (or underflowing) row: zeros
        out[name + INT8] = torch.round(weights / scale.unsqueeze(1)).clamp(-LEVELS, LEVELS).to(torch.int8).contiguous()
        out[name + SCALE] = scale.to(torch.float16).contiguous()  # (rows,): half the bytes; within int8's own error
    return out


def dequantize_state(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The float state a quantized `state` stands for; a state without int8 tensors comes back as it is."""
    out: dict[str, torch.Tensor] = {}
    for name, tensor in state.items():
        if name.endswith(SCALE) and name.removesuffix(SCALE) + INT8 in state:
            continue
        if name.endswith(INT8):
            base = name.removesuffix(INT8)
            if base + SCALE not in state:
                raise RunError(f"quantized weights {name} have no {base + SCALE} beside them; the run is damaged")
            out[base] = tensor.float() * state[base + SCALE].float().unsqueeze(1)  # (rows, columns)
        else:
            out[name] = tensor
    return out
