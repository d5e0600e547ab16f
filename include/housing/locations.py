"""Location names: the unit every model, data partition and MME artifact is keyed by.

A location is ``<CamelCaseCity>_<STATE>`` (``Chicago_IL``), the spelling of the AWS seed notebook.
It is safe in S3 keys and in ``TargetModel`` but not in SageMaker resource names (no underscores,
no upper case expected), hence :func:`resource_slug`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

__all__ = [
    "LOCATION_PATTERN",
    "MAX_LOCATION_LENGTH",
    "SEED_LOCATIONS",
    "US_STATE_CODES",
    "InvalidLocationError",
    "is_valid_location",
    "resource_slug",
    "validate_location",
    "validate_locations",
]

SEED_LOCATIONS: tuple[str, ...] = (
    "NewYork_NY",
    "LosAngeles_CA",
    "Chicago_IL",
    "Houston_TX",
    "Dallas_TX",
    "Phoenix_AZ",
    "Philadelphia_PA",
    "SanAntonio_TX",
    "SanDiego_CA",
    "SanFrancisco_CA",
)

# The 50 states plus the District of Columbia.
_STATE_CODES_TEXT = """
AL AK AZ AR CA CO CT DE FL GA HI ID IL IN IA KS KY LA ME MD MA MI MN MS MO MT NE NV NH NJ NM NY
NC ND OH OK OR PA RI SC SD TN TX UT VT VA WA WV WI WY DC
"""
US_STATE_CODES: frozenset[str] = frozenset(_STATE_CODES_TEXT.split())

# CamelCase city (each word: one capital then lower-case letters, e.g. "McAllen", "SanAntonio"),
# an underscore, then two capitals. The state itself is checked against US_STATE_CODES separately
# so the error can say "unknown state" rather than "malformed".
LOCATION_PATTERN: re.Pattern[str] = re.compile(r"^(?P<city>(?:[A-Z][a-z]+)+)_(?P<state>[A-Z]{2})$")

# Keeps S3 keys, log lines and derived SageMaker names readable.
MAX_LOCATION_LENGTH = 48


class InvalidLocationError(ValueError):
    """One or more location names are malformed, unknown, duplicated or missing."""


def _problem(value: object) -> str | None:
    """Why ``value`` is not a valid location, or None when it is."""
    if not isinstance(value, str):
        return f"{value!r} is not a string"
    if len(value) > MAX_LOCATION_LENGTH:
        return f"{value!r} is malformed: longer than {MAX_LOCATION_LENGTH} characters"
    match = LOCATION_PATTERN.match(value)
    if match is None:
        return f"{value!r} is malformed: expected CamelCaseCity_ST such as 'Chicago_IL'"
    if match.group("state") not in US_STATE_CODES:
        return f"{value!r} has an unknown state code {match.group('state')!r} (not one of the 50 states or DC)"
    return None


def is_valid_location(value: object) -> bool:
    """True when ``value`` is a well-formed location with a real US state code."""
    return _problem(value) is None


def validate_location(value: object) -> str:
    """Return ``value`` when it is a valid location, else raise :class:`InvalidLocationError`."""
    problem = _problem(value)
    if problem is not None:
        raise InvalidLocationError(f"Invalid location: {problem}")
    return value  # type: ignore[return-value]


def validate_locations(values: Iterable[str] | str) -> list[str]:
    """Validate a list of locations, keeping its order; report every bad value at once.

    A single string is read as a comma-separated list, because ``--conf`` and UI text fields
    deliver ``"Chicago_IL, Houston_TX"`` as often as a JSON list. Surrounding whitespace is stripped.
    """
    if isinstance(values, str):
        items: list[object] = [part for part in values.split(",") if part.strip()]
    else:
        try:
            items = list(values)
        except TypeError:
            raise InvalidLocationError(f"Locations must be a list of names, got {values!r}") from None
    if not items:
        raise InvalidLocationError("No locations given: the list of locations is empty")

    problems: list[str] = []
    cleaned: list[str] = []
    first_seen: dict[str, int] = {}
    for position, raw in enumerate(items, start=1):
        value = raw.strip() if isinstance(raw, str) else raw
        problem = _problem(value)
        if problem is not None:
            problems.append(f"item {position}: {problem}")
            continue
        assert isinstance(value, str)
        if value in first_seen:
            problems.append(f"item {position}: {value!r} is a duplicate of item {first_seen[value]}")
            continue
        first_seen[value] = position
        cleaned.append(value)
    if problems:
        raise InvalidLocationError(f"{len(problems)} invalid location(s): " + "; ".join(problems))
    return cleaned


def resource_slug(location: str) -> str:
    """SageMaker-safe, lower-case form of a location: ``"Chicago_IL"`` -> ``"chicago-il"``."""
    return validate_location(location).lower().replace("_", "-")
