"""Datasets and loaders (``cr.data``)."""
