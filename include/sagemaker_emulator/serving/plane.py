"""The serving plane: endpoint deployments (:mod:`.deployments`) plus InvokeEndpoint (:mod:`.invoke`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .deployments import Deployments
from .invoke import Invoker

if TYPE_CHECKING:
    from ..aws import MotoFacade
    from ..config import EmulatorConfig
    from ..faults import FaultRegistry
    from ..store import Store


class ServingPlane(Deployments):
    """What the emulator holds as ``emulator.serving``: the deployments, and the invoker reading their routes."""

    def __init__(self, *, config: EmulatorConfig, store: Store, faults: FaultRegistry, moto: MotoFacade):
        super().__init__(config=config, store=store, faults=faults, moto=moto)
        self.invoker = Invoker(self.routes, self.faults, self.telemetry)

    async def invoke(
        self, region: str, endpoint_name: str, headers: dict[str, str], body: bytes
    ) -> tuple[int, dict[str, str], bytes]:
        return await self.invoker.invoke(region, endpoint_name, headers, body)
