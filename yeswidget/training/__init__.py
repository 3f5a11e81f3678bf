"""The training room: one recipe (:mod:`.recipe`: a run's :class:`Settings`, the optimizer and
schedule registries, the defaults), the :class:`Trainer` that runs a task under a monitor, and
the paper's :mod:`.tasks`. No UI.
"""
from .recipe import OPTIMIZERS, SCHEDULES, SETTINGS_KEYS, Settings, batch_size_options, schedule_factor
from .trainer import Trainer

__all__ = ["Settings", "Trainer", "SCHEDULES", "OPTIMIZERS", "SETTINGS_KEYS", "schedule_factor",
           "batch_size_options"]
