"""Adversarial attacks trained or run against trained models (dSVA)."""
from .dsva import *  # noqa: F401,F403,E402
