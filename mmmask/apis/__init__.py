"""Helpers shared by the command-line tools: build a config's model and feed it inputs."""
from .model_inputs import build_model_from_cfg, dummy_inputs, load_config

__all__ = ['build_model_from_cfg', 'dummy_inputs', 'load_config']
