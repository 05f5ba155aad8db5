"""kaizen-cl: continual learning of image models."""

__version__ = "0.1.0"
