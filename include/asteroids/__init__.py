"""The asteroid Linear Learner workflow's domain code (seed notebook 002): offline data, cleaning, splits."""
