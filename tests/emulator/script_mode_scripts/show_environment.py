"""Writes what the training toolkit gave it (argv, SM_* variables, the config files, what /opt/ml holds) to
the model dir and output/data, so a test can read them back from model.tar.gz and output.tar.gz."""

import json
import os
import sys
from pathlib import Path

model_dir = Path(os.environ["SM_MODEL_DIR"])
config_dir = Path(os.environ["SM_INPUT_CONFIG_DIR"])
seen = {
    "argv": sys.argv[1:],
    "cwd": os.getcwd(),
    "env": {key: value for key, value in os.environ.items() if key.startswith(("SM_", "SAGEMAKER_", "TRAINING_"))},
    "config": {name: json.loads((config_dir / name).read_text()) for name in sorted(os.listdir(config_dir))},
    "train_files": sorted(os.listdir(os.environ["SM_CHANNEL_TRAIN"])),
    "python": sys.executable,
    # Present only when the job sees its own /opt/ml (a private mount namespace).
    "opt_ml_hyperparameters": (
        json.loads(Path("/opt/ml/input/config/hyperparameters.json").read_text())
        if Path("/opt/ml/input/config/hyperparameters.json").is_file()
        else None
    ),
}
(model_dir / "seen.json").write_text(json.dumps(seen, indent=1))
Path(os.environ["SM_OUTPUT_DATA_DIR"], "report.txt").write_text("written by " + os.environ["SM_CURRENT_HOST"])
print("learning_rate from SM_HP_LEARNING_RATE:", os.environ["SM_HP_LEARNING_RATE"])
