"""Encoders: models, self-supervised training, evaluation protocols and metrics, export and runtimes."""
