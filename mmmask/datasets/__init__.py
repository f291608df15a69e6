"""Datasets: the built-in toy world and the dataset helpers of the methods."""
from .toy_data import build_toy_data

__all__ = ['build_toy_data']
