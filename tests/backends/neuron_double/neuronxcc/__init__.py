"""Stands in for the Neuron compiler package: only its version is read."""

__version__ = "2.21.33363.0+82129205"
