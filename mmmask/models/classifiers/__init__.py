"""Whole models that are neither segmentors nor self-supervised algorithms."""
from .vitp import ViTPEncoder, ViTPPointClassifier

__all__ = ['ViTPEncoder', 'ViTPPointClassifier']
from .ttame import *  # noqa: F401,F403,E402
from .adversarial import *  # noqa: F401,F403,E402
