"""Continual learning in production: updates from arriving data, model versions with a release
gate, prediction and export."""
