"""Models: one registry, one forward contract (ids, lengths) -> Output."""

from seqlab.lazy import lazy_exports

__all__ = ["LayerRow", "Output", "SequenceClassifier", "build_model", "count_parameters", "model_config", "model_names",
           "recorded_model_options", "saved_model_config", "saved_model_options"]
__getattr__, __dir__ = lazy_exports(__name__, {
    **{name: "seqlab.models.base" for name in ("LayerRow", "Output", "SequenceClassifier", "count_parameters")},
    "build_model": "seqlab.models.registry", "model_config": "seqlab.models.registry", "model_names": "seqlab.models.names",
    **{name: "seqlab.models.registry" for name in ("recorded_model_options", "saved_model_config",
                                                   "saved_model_options")},
})
