"""Small helpers shared by the whole package."""

from .common import make_divisible

__all__ = ["make_divisible"]
