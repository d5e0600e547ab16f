"""The serving interface every emulated built-in algorithm implements."""

from __future__ import annotations


class Predictor:
    """A loaded model, called concurrently from many threads (implementations must be thread-safe).

    ``invoke`` returns ``(body, content_type)`` or raises ``ModelInvocationError`` carrying the status
    code the real serving container would answer with. An empty request body returns ``(b"", accept)``:
    the containers answer that with 204 No Content, which the emulator core maps.
    """

    algorithm: str = ""
    feature_count: int | None = None
    # False when invoke blocks on another process (script mode): the runtime then calls it from a thread.
    inline: bool = True

    def invoke(self, body: bytes, content_type: str | None, accept: str | None, multi_model: bool) -> tuple[bytes, str]:
        raise NotImplementedError

    def close(self) -> None:
        """Release what the predictor holds (script mode: stop its worker processes). Idempotent."""
