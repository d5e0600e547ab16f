"""The emulator's serving plane: endpoints (control plane, ``endpoints.HANDLERS`` in the operation table)
and InvokeEndpoint (runtime)."""

from __future__ import annotations

from .plane import ServingPlane

__all__ = ["ServingPlane"]
