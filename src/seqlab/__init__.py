"""seqlab: sequence models for text classification on PyTorch.

    import seqlab
    corpus = seqlab.prepare("imdb").corpus               # IMDb, tokenized and cached
    model, result = seqlab.train_model("lstm", corpus, out="runs/lstm")
    predictor = seqlab.load("runs/lstm")
    predictor.predict(["A wonderful film."])
"""

__version__ = "0.1.0"

from seqlab.errors import SeqlabError  # noqa: E402
from seqlab.data.sources import DataSource  # noqa: E402
from seqlab.pipeline import compare, evaluate_run, prepare, sample_predictions, train_model  # noqa: E402
from seqlab.predict import Prediction, Predictor, load  # noqa: E402
from seqlab.text.encoder import EncoderConfig  # noqa: E402
from seqlab.training.fit import TrainConfig  # noqa: E402

__all__ = [
    "DataSource", "EncoderConfig", "Prediction", "Predictor", "SeqlabError", "TrainConfig", "__version__", "compare",
    "evaluate_run", "load", "prepare", "sample_predictions", "train_model",
]
