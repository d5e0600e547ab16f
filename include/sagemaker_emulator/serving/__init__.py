"""The emulator's serving plane: endpoints (control plane) and InvokeEndpoint (runtime).

Importing this package registers CreateEndpoint, DescribeEndpoint, ListEndpoints, UpdateEndpoint,
DeleteEndpoint and UpdateEndpointWeightsAndCapacities with the control plane.
"""

from __future__ import annotations

from . import endpoints  # noqa: F401  (registers the endpoint operations)
from .plane import ServingPlane
from .predictors import predictor_for_model

__all__ = ["ServingPlane", "predictor_for_model"]
