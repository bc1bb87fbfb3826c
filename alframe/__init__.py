"""alframe: simulation-in-the-loop active learning."""

__version__ = "0.1.0"
