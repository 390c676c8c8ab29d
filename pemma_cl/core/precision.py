"""The arithmetic of a run's forward passes (``--precision``).

``fp32`` throughout, or ``bf16``: PyTorch's autocast runs convolutions and matrix products in bfloat16 while weights,
gradients, losses and the optimiser stay in fp32 (no loss scaling needed, unlike float16). Meant for GPUs with
bfloat16 units; on a CPU it changes the numbers without making training faster (README, *Speed*).
"""

FP32 = "fp32"
BF16 = "bf16"
#: Every precision, the default first.
PRECISIONS: tuple[str, ...] = (FP32, BF16)
