"""The seed overview notebook's script-mode training script (``sklearn_rf.py``), modernised.

What changed from the notebook, and why:

* ``from sklearn.externals import joblib`` is gone from scikit-learn (0.23): ``import joblib``;
* ``DataFrame.ix`` is gone from pandas (1.0): ``.iloc``;
* ``--random_state`` (default 0) seeds the forest, so a rerun gives the same model and the same report;
* ``predict_fn`` answers the probability of churn (``predict_proba``) instead of the container's default
  ``model.predict`` (a 0/1 label), so the pipeline can rank customers and compute an AUC, as it does for
  XGBoost's ``binary:logistic`` scores.

It runs in the scikit-learn image's script mode: SageMaker passes the hyperparameters as ``--name value``
and the directories as ``SM_*`` environment variables; the serving container imports this module and calls
``model_fn`` and ``predict_fn``.
"""

import argparse
import os

import joblib
import numpy as np
import pandas as pd
from sklearn import ensemble

if __name__ == "__main__":
    parser = argparse.ArgumentParser()

    # Hyperparameters are described here. In this simple example we are just including one hyperparameter.
    parser.add_argument("--n_estimators", type=int, default=100)
    parser.add_argument("--random_state", type=int, default=0)

    # Sagemaker specific arguments. Defaults are set in the environment variables.
    parser.add_argument("--output-data-dir", type=str, default=os.environ["SM_OUTPUT_DATA_DIR"])
    parser.add_argument("--model-dir", type=str, default=os.environ["SM_MODEL_DIR"])
    parser.add_argument("--train", type=str, default=os.environ["SM_CHANNEL_TRAIN"])

    args = parser.parse_args()

    # Take the set of files and read them all into a single pandas dataframe
    input_files = [os.path.join(args.train, file) for file in os.listdir(args.train)]
    if len(input_files) == 0:
        raise ValueError(
            (
                "There are no files in {}.\n"
                + "This usually indicates that the channel ({}) was incorrectly specified,\n"
                + "the data specification in S3 was incorrectly specified or the role specified\n"
                + "does not have permission to access the data."
            ).format(args.train, "train")
        )
    raw_data = [pd.read_csv(file, header=None, engine="python") for file in input_files]
    train_data = pd.concat(raw_data)

    # labels are in the first column
    train_y = train_data.iloc[:, 0]
    train_X = train_data.iloc[:, 1:]

    # Here we support a single hyperparameter, 'n_estimators'. Note that you can add as many
    # as your training my require in the ArgumentParser above.
    n_estimators = args.n_estimators

    # Now use scikit-learn's random forest classifier to train the model.
    clf = ensemble.RandomForestClassifier(n_estimators=n_estimators, random_state=args.random_state)
    clf = clf.fit(train_X, train_y)
    print(f"Trained a RandomForest of {n_estimators} trees on {train_X.shape[0]} rows x {train_X.shape[1]} features")

    # Serialize the model.
    joblib.dump(clf, os.path.join(args.model_dir, "model.joblib"))


def model_fn(model_dir):
    """Deserialize and return fitted model

    Note that this should have the same name as the serialized model in the main method
    """
    clf = joblib.load(os.path.join(model_dir, "model.joblib"))
    return clf


def predict_fn(input_data, model):
    """The probability of churn (label 1) for each row, as XGBoost's binary:logistic answers."""
    probabilities = model.predict_proba(np.asarray(input_data, dtype=float))
    churn_column = list(model.classes_).index(1) if 1 in model.classes_ else None
    if churn_column is None:  # a forest trained on one class only: it never predicts churn
        return np.zeros(len(probabilities))
    return probabilities[:, churn_column]
