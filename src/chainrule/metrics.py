"""Metrics for reporting: plain floats (``cr.metrics``)."""
