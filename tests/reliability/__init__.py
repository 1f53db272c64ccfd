"""Reliability tests (issue 8): one module per area of the issue."""
