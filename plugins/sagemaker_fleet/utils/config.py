"""Settings the package reads from Airflow's configuration, with the package's own defaults."""

from __future__ import annotations

import os

__all__ = ["PUBLIC_EMULATOR_URL_ENV", "default_deferrable", "public_emulator_url"]

# Where a browser reaches the local emulator, when that differs from what the workers use (compose:
# workers call http://sagemaker-emulator:4566, the browser opens http://localhost:4566). Used for links only.
PUBLIC_EMULATOR_URL_ENV = "SAGEMAKER_FLEET_PUBLIC_EMULATOR_URL"


def default_deferrable() -> bool:
    """``[operators] default_deferrable`` when it is set, True when it is not: waits hold no worker slot
    unless told otherwise.

    ``conf.getboolean("operators", "default_deferrable", fallback=True)`` alone is not enough: Airflow's
    built-in defaults define the option as False, so the fallback never applies. "Set" means an
    environment variable (``AIRFLOW__OPERATORS__DEFAULT_DEFERRABLE``, or its ``_CMD``/``_SECRET`` forms) or
    an entry in airflow.cfg. The provider's operators read the same option with fallback False; ``make run``
    and compose set it to True so they defer too.
    """
    import configparser

    from airflow.providers.common.compat.sdk import conf

    variable = "AIRFLOW__OPERATORS__DEFAULT_DEFERRABLE"
    in_environment = any(name in os.environ for name in (variable, f"{variable}_CMD", f"{variable}_SECRET"))
    # The plain ConfigParser lookup sees airflow.cfg only, not the built-in defaults Airflow keeps apart.
    in_config_file = configparser.ConfigParser.has_option(conf, "operators", "default_deferrable")
    if in_environment or in_config_file:
        return conf.getboolean("operators", "default_deferrable", fallback=True)
    return True


def public_emulator_url() -> str | None:
    """``[sagemaker_fleet] public_emulator_url`` (``AIRFLOW__SAGEMAKER_FLEET__PUBLIC_EMULATOR_URL``), else
    ``SAGEMAKER_FLEET_PUBLIC_EMULATOR_URL``, else None (links use the connection's endpoint_url)."""
    from airflow.providers.common.compat.sdk import conf

    value = conf.get("sagemaker_fleet", "public_emulator_url", fallback=None) or os.environ.get(PUBLIC_EMULATOR_URL_ENV)
    return value.rstrip("/") if value else None
