"""A user script that fails the way real ones do: an exception deep in its own code."""


def load_rows(path):
    raise ValueError(f"no usable rows in {path}")


if __name__ == "__main__":
    print("starting training", flush=True)
    load_rows("/opt/ml/input/data/train")
