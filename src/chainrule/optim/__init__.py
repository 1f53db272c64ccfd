"""Optimizers and learning-rate schedulers (``cr.optim``)."""
