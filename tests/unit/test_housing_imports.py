"""DAG files import include.housing at parse time: it must not pull in heavy libraries."""

import os
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]

MODULES = ("locations", "naming", "feed", "prepare", "evaluation", "params")
HEAVY = ("numpy", "pandas", "scipy", "matplotlib", "airflow", "boto3", "botocore")


def test_importing_the_domain_code_stays_cheap():
    imports = "; ".join(f"import include.housing.{name}" for name in MODULES)
    check = f"import sys; {imports}; print(','.join(m for m in {HEAVY!r} if m in sys.modules))"
    # include.housing imports sagemaker_fleet.utils, which lives on the plugins path.
    env = {**os.environ, "PYTHONPATH": f"{REPO_ROOT}{os.pathsep}{REPO_ROOT / 'plugins'}"}
    result = subprocess.run(
        [sys.executable, "-c", check], capture_output=True, text=True, check=True, cwd=REPO_ROOT, env=env
    )
    assert result.stdout.strip() == "", f"heavy modules imported at module level: {result.stdout.strip()}"
