"""From text to token ids: the encoder, padding, and the encoded-data cache."""

from seqlab.text.cache import EncodedCorpus, EncodedSplit
from seqlab.text.encoder import PAD, START, UNKNOWN, Encoded, EncoderConfig, TextEncoder, pad_sequences

__all__ = ["PAD", "START", "UNKNOWN", "Encoded", "EncodedCorpus", "EncodedSplit", "EncoderConfig",
           "TextEncoder", "pad_sequences"]
