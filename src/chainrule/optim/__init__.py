"""Optimizers and learning-rate schedulers (``cr.optim``).

Each optimizer updates ``p.data`` in place from ``p.grad`` with PyTorch's rule, and has a
``state_dict``/``load_state_dict`` pair so that training can resume exactly.
"""

from chainrule.optim import lr_scheduler
from chainrule.optim.adagrad import Adagrad
from chainrule.optim.adam import Adam, AdamW
from chainrule.optim.lr_scheduler import CosineAnnealingLR, LRScheduler, StepLR
from chainrule.optim.optimizer import Optimizer
from chainrule.optim.rmsprop import RMSprop
from chainrule.optim.sgd import SGD

__all__ = [
    "Optimizer",
    "SGD",
    "Adam",
    "AdamW",
    "RMSprop",
    "Adagrad",
    "lr_scheduler",
    "LRScheduler",
    "StepLR",
    "CosineAnnealingLR",
]
