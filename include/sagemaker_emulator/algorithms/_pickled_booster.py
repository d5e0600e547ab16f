"""Pickled xgboost Boosters, loaded without running the pickle.

The 0.90-x, 1.0-1 and 1.2-x containers saved ``xgboost-model`` as ``pickle.dump(booster)``. A pickle is a
program: ``pickle.load`` calls whatever the file names (``os.system`` included), so a model archive from a
client must never reach it. :class:`BoosterUnpickler` resolves only the names a pickled Booster holds, each
to a harmless stand-in:

* ``xgboost.core.Booster`` -> :class:`PickledBooster`, a plain holder of the pickled state, so no xgboost
  code runs while unpickling;
* ``builtins.bytearray`` of bytes or text only (the model bytes, protocols 2-4), ``_codecs.encode`` to
  latin-1 only (bytes in protocols 0-2) and ``copyreg._reconstructor`` only as
  ``(PickledBooster, object, None)`` (protocols 0-1).

Any other name is refused before anything is called. The state's ``handle`` (the Booster as xgboost
serialised it) then goes to a fresh ``xgb.Booster`` through its ``__setstate__``, which parses it exactly as
``pickle.load`` would have. Other attributes of old pickles (``best_ntree_limit``, ...) are dropped: the model
itself carries what serving needs.

xgboost 3.x reads the serialisation of the xgboost that made the pickle only if it is recent enough; the
old containers' xgboost 0.90-1.2 wrote a binary format that 3.x no longer reads. Such a model is refused
with xgboost's own reason (see README: re-save it in JSON with the xgboost that trained it).
"""

from __future__ import annotations

import io
import pickle
from typing import Any


class RefusedPickle(pickle.UnpicklingError):
    """The pickle names something a pickled Booster never holds, or has the wrong shape."""


class UnreadableBooster(ValueError):
    """A well-formed pickled Booster whose model bytes this xgboost cannot parse (an old binary format)."""


class PickledBooster:
    """What ``xgboost.core.Booster`` resolves to while unpickling: it only keeps the state it is given."""

    def __init__(self) -> None:  # REDUCE would pass the pickle's arguments here: a Booster pickle has none
        self.state: dict[str, Any] | None = None

    def __setstate__(self, state: Any) -> None:
        if not isinstance(state, dict) or not isinstance(state.get("handle"), bytes | bytearray):
            raise RefusedPickle("the pickled Booster's state has no model bytes ('handle')")
        self.state = state


def _latin1_encode(text: Any, encoding: str = "utf-8") -> bytes:
    # Protocols 0-2 spell bytes as _codecs.encode(str, "latin1"); no other codec is ever needed.
    if not isinstance(text, str) or encoding.lower().replace("-", "").replace("_", "") != "latin1":
        raise RefusedPickle(f"_codecs.encode({type(text).__name__}, {encoding!r}) is not part of a pickled Booster")
    return text.encode("latin-1")


def _bytearray(*args: Any) -> bytearray:
    # Pickles spell a bytearray as bytearray(b"...") or bytearray("...", "latin-1"); never bytearray(<int>),
    # which would make the unpickler allocate whatever size the file asks for.
    if args and not isinstance(args[0], bytes | str):
        raise RefusedPickle(f"bytearray({type(args[0]).__name__}) is not part of a pickled Booster")
    return bytearray(*args)


def _reconstructor(cls: Any, base: Any, state: Any) -> PickledBooster:
    # Protocols 0-1 rebuild objects as copyreg._reconstructor(cls, object, None).
    if cls is not PickledBooster or base is not object or state is not None:
        raise RefusedPickle("copyreg._reconstructor is only allowed to rebuild the Booster itself")
    return PickledBooster.__new__(PickledBooster)


ALLOWED: dict[tuple[str, str], Any] = {
    ("xgboost.core", "Booster"): PickledBooster,
    ("builtins", "bytearray"): _bytearray,
    ("__builtin__", "bytearray"): _bytearray,
    ("builtins", "object"): object,
    ("__builtin__", "object"): object,
    ("_codecs", "encode"): _latin1_encode,
    ("copyreg", "_reconstructor"): _reconstructor,
    ("copy_reg", "_reconstructor"): _reconstructor,
}


class BoosterUnpickler(pickle.Unpickler):
    """An unpickler that knows only the names of a pickled xgboost Booster (see the module docstring)."""

    def find_class(self, module: str, name: str) -> Any:
        try:
            return ALLOWED[(module, name)]
        except KeyError:
            raise RefusedPickle(
                f"the pickle calls {module}.{name}, which a pickled xgboost Booster never does; "
                "refused without running it"
            ) from None

    def persistent_load(self, pid: Any) -> Any:
        raise RefusedPickle("persistent references are not part of a pickled Booster")


def load_pickled_booster(data: bytes) -> Any:
    """An ``xgb.Booster`` from the bytes of a pickled Booster; RefusedPickle or UnreadableBooster otherwise."""
    import xgboost as xgb

    try:
        loaded = BoosterUnpickler(io.BytesIO(data)).load()
    except RefusedPickle:
        raise
    except Exception as exc:  # truncated or malformed: an unpickling error, still nothing was run
        raise RefusedPickle(f"not a readable pickle ({type(exc).__name__}: {exc})") from None
    if not isinstance(loaded, PickledBooster) or loaded.state is None:
        raise RefusedPickle(f"the pickle holds a {type(loaded).__name__}, not an xgboost Booster")
    booster = xgb.Booster()
    try:
        booster.__setstate__({"handle": bytearray(loaded.state["handle"])})
    except xgb.core.XGBoostError as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UnreadableBooster(
            f"a pickled xgboost Booster whose model xgboost {xgb.__version__} cannot read ({reason}). Pickles "
            "written by the 0.90-x, 1.0-1 and 1.2-x containers hold xgboost's old binary format: load the model "
            "with the xgboost that trained it and save it with booster.save_model('xgboost-model.json'), then "
            "repack model.tar.gz"
        ) from None
    return booster
