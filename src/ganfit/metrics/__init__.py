"""Evaluation metrics of reconstructions against their photos."""
