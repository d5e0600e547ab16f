"""pyproject's filterwarnings: a deprecation in our code fails the test, one inside a third-party library
does not. Each check goes through the filters pytest applies to every test, with Airflow 3.3's own
deprecation classes raised where Airflow's stacklevel points them. Airflow 3.3 has two
RemovedInAirflow4Warning classes (airflow.exceptions, airflow.sdk.exceptions); the task SDK, which
operators and DAGs use, raises the second."""

from __future__ import annotations

import importlib
import warnings

import pytest
from airflow.sdk.exceptions import RemovedInAirflow4Warning
from airflow.utils.deprecation_tools import DeprecatedImportWarning

# The name Airflow's DagBag gives a DAG file's module: unusual_prefix_<sha1 of the path>_<file name>.
DAG_FILE_MODULE = "unusual_prefix_" + "0123456789abcdef" * 2 + "01234567_housing_mme_nightly"


def test_deprecated_airflow_import_in_our_code_fails() -> None:
    exceptions = importlib.import_module("airflow.exceptions")
    # DeprecatedImportWarning is a FutureWarning, attributed (stacklevel=2) to the module reading the name.
    with pytest.raises(DeprecatedImportWarning, match="airflow.sdk.exceptions.TaskDeferred"):
        _ = exceptions.TaskDeferred


def test_deprecated_operator_argument_in_our_code_fails() -> None:
    from airflow.providers.standard.operators.empty import EmptyOperator

    with pytest.raises(RemovedInAirflow4Warning, match="SmtpNotifier"):
        EmptyOperator(task_id="notify", email="ops@example.com")


def test_deprecation_in_a_dag_file_fails() -> None:
    code = compile("EmptyOperator(task_id='notify', email='ops@example.com')", "dags/housing_mme_nightly.py", "exec")
    from airflow.providers.standard.operators.empty import EmptyOperator

    with pytest.raises(RemovedInAirflow4Warning):
        exec(code, {"__name__": DAG_FILE_MODULE, "EmptyOperator": EmptyOperator})


@pytest.mark.parametrize(
    "module",
    ["include.housing.feed", "dags.housing_ab_rollout", "sagemaker_fleet.operators.training", "tests.unit.x"],
)
def test_deprecations_in_each_of_our_packages_fail(module: str) -> None:
    with pytest.raises(DeprecationWarning):
        warnings.warn_explicit("old API", DeprecationWarning, "x.py", 1, module=module)
    with pytest.raises(FutureWarning):
        warnings.warn_explicit("old API", FutureWarning, "x.py", 1, module=module)


@pytest.mark.parametrize("module", ["botocore.client", "airflow.configuration", "includes_elsewhere", "testsuite"])
def test_third_party_deprecations_are_ignored(module: str) -> None:
    with warnings.catch_warnings(record=True) as seen:
        # catch_warnings keeps the active filters; record only replaces where warnings are shown.
        warnings.warn_explicit("old API", DeprecationWarning, "x.py", 1, module=module)
    assert seen == []
