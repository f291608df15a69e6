"""Helpers shared by the command-line tools: build a config's model and feed it inputs."""
from .model_inputs import (build_model_from_cfg, dummy_inputs, evenly_spaced_inputs, list_images,
                           load_config, load_trained_model, write_tool_report)

__all__ = ['build_model_from_cfg', 'dummy_inputs', 'load_config', 'load_trained_model',
           'evenly_spaced_inputs', 'list_images', 'write_tool_report']
