"""drpc: compile one campaign YAML into everything each Rubin data facility needs."""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
