"""An inference script that forgot model_fn (the scikit-learn container has no default)."""


def predict_fn(data, model):
    return model.predict(data)
