"""seqlab: sequence models for text classification on PyTorch.

    import seqlab
    corpus = seqlab.prepare("imdb").corpus               # IMDb, tokenized and cached
    model, result = seqlab.train_model("lstm", corpus, out="runs/lstm")
    predictor = seqlab.load("runs/lstm")
    predictor.predict(["A wonderful film."])

The names below are imported on first use, so `import seqlab` (and `seqlab --help`) loads no torch.
"""

from seqlab.lazy import lazy_exports

__version__ = "0.1.0"  # the one place the version is written; pyproject.toml reads it from here

__all__ = [
    "Callback", "DataSource", "EncoderConfig", "Prediction", "Predictor", "PretrainRecipe", "SeqlabError",
    "TrainConfig", "__version__", "compare", "evaluate_run", "load", "prepare", "pretrain", "sample_predictions",
    "train_model",
]
__getattr__, __dir__ = lazy_exports(__name__, {
    "SeqlabError": "seqlab.errors", "EncoderConfig": "seqlab.text.config", "TrainConfig": "seqlab.training.config",
    "DataSource": "seqlab.data.config", "Callback": "seqlab.training.fit",
    **{name: "seqlab.pipeline" for name in ("compare", "evaluate_run", "prepare", "sample_predictions", "train_model")},
    **{name: "seqlab.predict" for name in ("Prediction", "Predictor", "load")},
    **{name: "seqlab.pretraining" for name in ("PretrainRecipe", "pretrain")},
})
