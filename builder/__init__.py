"""Headjack image factory: variants -> render -> plan -> build -> test -> publish."""

__version__ = "0.1.0"
