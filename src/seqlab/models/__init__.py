"""Models: one registry, one forward contract (ids, lengths) -> Output."""

from seqlab.models.base import LayerRow, Output, SequenceClassifier, count_parameters
from seqlab.models.registry import build_model, model_config, model_names

__all__ = ["LayerRow", "Output", "SequenceClassifier", "build_model", "count_parameters", "model_config", "model_names"]
