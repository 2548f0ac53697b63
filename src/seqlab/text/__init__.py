"""From text to token ids: the encoder, padding, and the encoded-data cache."""

from seqlab.lazy import lazy_exports

__all__ = ["PAD", "START", "UNKNOWN", "Encoded", "EncodedCorpus", "EncodedSplit", "EncoderConfig",
           "TextEncoder", "pad_sequences"]
__getattr__, __dir__ = lazy_exports(__name__, {
    "EncodedCorpus": "seqlab.text.cache", "EncodedSplit": "seqlab.text.cache", "EncoderConfig": "seqlab.text.config",
    **{name: "seqlab.text.encoder" for name in ("PAD", "START", "UNKNOWN", "Encoded", "TextEncoder", "pad_sequences")},
})
