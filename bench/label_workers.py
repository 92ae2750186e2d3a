"""The worker side of `bench_label_cores.py`: a module (not the script), so that loky's workers
import it by name and keep the model they load in its globals between tasks."""

from esk_pipeline.pipeline.local_model import LocalModel, Prediction

_model: LocalModel | None = None


def load(path: str) -> None:
    """The worker's initializer: load the model once."""
    global _model
    _model = LocalModel.load(path)


def predict(texts: list[str]) -> list[Prediction]:
    assert _model is not None, "the worker's initializer loads the model"
    return _model.predict(texts)
