"""Location names: the pattern, the state check, error messages and slugs."""

import pytest

from include.housing.locations import (
    LOCATION_PATTERN,
    SEED_LOCATIONS,
    InvalidLocationError,
    is_valid_location,
    resource_slug,
    validate_locations,
)
from include.housing.naming import is_valid_sagemaker_name


def test_seed_locations_are_the_notebooks_ten_and_all_valid():
    assert len(SEED_LOCATIONS) == 10
    assert SEED_LOCATIONS[0] == "NewYork_NY" and SEED_LOCATIONS[-1] == "SanFrancisco_CA"
    assert validate_locations(SEED_LOCATIONS) == list(SEED_LOCATIONS)


@pytest.mark.parametrize("name", ["Chicago_IL", "McAllen_TX", "Washington_DC", "SaltLakeCity_UT"])
def test_valid_names(name):
    assert LOCATION_PATTERN.match(name)
    assert is_valid_location(name)


@pytest.mark.parametrize(
    "name", ["chicago_IL", "Chicago_il", "Chicago-IL", "Chicago_ILL", "Chi cago_IL", "_IL", "Chicago_", "", 42]
)
def test_malformed_names(name):
    assert not is_valid_location(name)


def test_unknown_state_is_reported_as_such():
    with pytest.raises(InvalidLocationError, match="unknown state code 'XX'"):
        validate_locations(["Chicago_XX"])


def test_every_problem_is_named_at_once_and_order_is_kept():
    with pytest.raises(InvalidLocationError) as error:
        validate_locations(["Houston_TX", "chicago", "Chicago_ZZ", "Houston_TX", 7])
    message = str(error.value)
    assert "4 invalid" in message
    assert "'chicago' is malformed" in message
    assert "unknown state code 'ZZ'" in message
    assert "item 4: 'Houston_TX' is a duplicate of item 1" in message
    assert "7 is not a string" in message
    assert validate_locations(["Phoenix_AZ", "Chicago_IL", "Dallas_TX"]) == ["Phoenix_AZ", "Chicago_IL", "Dallas_TX"]


def test_empty_list_is_refused():
    with pytest.raises(InvalidLocationError, match="empty"):
        validate_locations([])
    with pytest.raises(InvalidLocationError, match="empty"):
        validate_locations(" , ")


def test_comma_separated_string_and_whitespace_are_accepted():
    assert validate_locations(" Chicago_IL, Houston_TX ") == ["Chicago_IL", "Houston_TX"]


def test_resource_slug():
    assert resource_slug("Chicago_IL") == "chicago-il"
    assert resource_slug("SanFrancisco_CA") == "sanfrancisco-ca"
    assert all(is_valid_sagemaker_name(resource_slug(loc)) for loc in SEED_LOCATIONS)
    with pytest.raises(InvalidLocationError):
        resource_slug("Chicago IL")
