"""Retraining-free pruning of trained transformers (OPTIN)."""
from .optin import *  # noqa: F401,F403,E402
