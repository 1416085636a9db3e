"""Fake pykinect2 for tests: see ../README.md."""
