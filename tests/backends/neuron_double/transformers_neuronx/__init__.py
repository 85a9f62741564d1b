"""Test double of transformers-neuronx (see ../README.md)."""

__version__ = "0.13.1322-double"
