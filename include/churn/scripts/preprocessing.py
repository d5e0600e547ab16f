"""The seed overview notebook's preprocessing.py, modernised for scikit-learn >= 1.2 (the three calls the
notebook's 0.20 API spelled differently: make_column_transformer takes (transformer, columns), OneHotEncoder's
``sparse`` became ``sparse_output``, ``get_feature_names`` became ``get_feature_names_out``) and pandas 2/3 (the
labels are inserted by value, not by index). The paths stay hard-coded, as in the notebook.

One addition: ``--no-header`` writes train.csv and test.csv without their header row. The notebook writes the
header, but SageMaker's built-in XGBoost and the notebook's own sklearn_rf.py (``header=None``) read label-first
CSV without one, so the churn DAG passes it."""

import argparse
import os

import numpy as np
import pandas as pd
from sklearn.compose import make_column_transformer
from sklearn.impute import SimpleImputer
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import LabelBinarizer, OneHotEncoder

if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--train-test-split-ratio", type=float, default=0.3)
    parser.add_argument("--no-header", action="store_true", help="write the CSVs without their header row")
    args, _ = parser.parse_known_args()

    print(f"Received arguments {args}")

    input_data_path = os.path.join("/opt/ml/processing/input", "raw_churn.csv")

    print(f"Reading input data from {input_data_path}")
    df = pd.read_csv(input_data_path)
    df = pd.DataFrame(data=df)

    # Encode target
    lb = LabelBinarizer()
    label = lb.fit_transform(df["Churn?"])
    df["Churn?"] = label.flatten()

    negative_examples, positive_examples = np.bincount(df["Churn?"])
    print(
        f"Data after cleaning: {df.shape}, {positive_examples} positive examples, {negative_examples} negative examples"
    )

    split_ratio = args.train_test_split_ratio
    print(f"Splitting data into train and test sets with ratio {split_ratio}")
    X_train, X_test, y_train, y_test = train_test_split(
        df.drop("Churn?", axis=1), df["Churn?"], test_size=split_ratio, random_state=0
    )

    numerical_cols = [
        "Account Length",
        "VMail Message",
        "Day Mins",
        "Day Calls",
        "Eve Mins",
        "Eve Calls",
        "Night Mins",
        "Night Calls",
        "Intl Mins",
        "Intl Calls",
        "CustServ Calls",
    ]
    categorical_cols = ["State", "Int'l Plan", "VMail Plan"]

    num_proc = make_pipeline(SimpleImputer(strategy="median"))
    cat_proc = make_pipeline(
        SimpleImputer(strategy="constant", fill_value="missing"),
        OneHotEncoder(handle_unknown="ignore", sparse_output=False),
    )
    preprocessor = make_column_transformer((num_proc, numerical_cols), (cat_proc, categorical_cols))
    print("Running preprocessing and feature engineering transformations")
    train_features = preprocessor.fit_transform(X_train)
    test_features = preprocessor.transform(X_test)

    print(f"Train data shape after preprocessing: {train_features.shape}")
    print(f"Test data shape after preprocessing: {test_features.shape}")

    one_hot_encoder = preprocessor.named_transformers_["pipeline-2"].named_steps["onehotencoder"]
    encoded_cat_cols = one_hot_encoder.get_feature_names_out(input_features=categorical_cols).tolist()
    processed_cols = numerical_cols + encoded_cat_cols

    train_df = pd.DataFrame(train_features, columns=processed_cols)
    train_df.insert(0, "churn", y_train.to_numpy())

    test_df = pd.DataFrame(test_features, columns=processed_cols)
    test_df.insert(0, "churn", y_test.to_numpy())

    train_output_path = os.path.join("/opt/ml/processing/train", "train.csv")
    test_output_path = os.path.join("/opt/ml/processing/test", "test.csv")

    print(f"Saving training features to {train_output_path}")
    train_df.to_csv(train_output_path, header=not args.no_header, index=False)

    print(f"Saving test features to {test_output_path}")
    test_df.to_csv(test_output_path, header=not args.no_header, index=False)
