"""The Playground: a teaching app that trains a task and draws its cloud, runs and zones."""
from .app import RUN_COLORS, Playground

__all__ = ["Playground", "RUN_COLORS"]
