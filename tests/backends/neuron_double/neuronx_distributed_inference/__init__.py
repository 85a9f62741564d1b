"""Test double of NxD Inference (see ../README.md)."""
