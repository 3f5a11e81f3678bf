"""The paper's experiments as ready-made teaching tasks (see :mod:`.catalog`)."""
from .catalog import (
    PAPER_SPLIT_SEED,
    TASKS,
    Task,
    decode_nearest,
    digits,
    get_task,
    mlp,
    mnist,
    mnist_targets,
    patch_recovery,
    phase_retrieval,
    signal_denoising,
)

__all__ = ["Task", "TASKS", "PAPER_SPLIT_SEED", "get_task", "mlp", "phase_retrieval", "signal_denoising",
           "patch_recovery", "digits", "mnist", "mnist_targets", "decode_nearest"]
