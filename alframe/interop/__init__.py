"""Bridges to other active-learning libraries (optional dependencies, imported on use)."""
