"""The digits seed workflow's domain code (no Airflow): scikit-learn's digits in the MNIST notebook's layout."""
