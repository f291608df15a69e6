"""Batch samplers of the methods (registered in mmmask.registry.DATA_SAMPLERS)."""
from .cluster_sampler import *  # noqa: F401,F403
