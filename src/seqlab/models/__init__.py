"""Models: one registry, one forward contract (ids, lengths) -> Output."""

from seqlab.lazy import lazy_exports

__all__ = ["LayerRow", "Output", "SequenceClassifier", "build_model", "count_parameters", "model_config", "model_names",
           "saved_model_config"]
__getattr__, __dir__ = lazy_exports(__name__, {
    **{name: "seqlab.models.base" for name in ("LayerRow", "Output", "SequenceClassifier", "count_parameters")},
    "build_model": "seqlab.models.registry", "model_config": "seqlab.models.registry", "model_names": "seqlab.models.names",
    "saved_model_config": "seqlab.models.registry",
})
