"""The text stage's options, declared once: the encoder and word2vec read them, the CLI
surfaces their defaults. Nothing heavy is imported here (no numpy, no tokenizers), so
`seqlab --help` shows the defaults without loading them.
"""

from __future__ import annotations

from dataclasses import dataclass

from seqlab.errors import ConfigError

RESERVED = ("<pad>", "<start>", "<unk>")  # ids 0, 1 and 2, as keras.datasets.imdb reserves them
SIDES = ("pre", "post")


@dataclass
class EncoderConfig:
    max_features: int = 10_000  # ids in the vocabulary, the 3 reserved ones included (Keras num_words)
    maxlen: int = 200  # tokens kept per text; longer texts are cut
    truncating: str = "pre"  # 'pre' drops the start and keeps the last maxlen tokens, as Keras's pad_sequences
    padding: str = "pre"  # side padding goes in fixed-length arrays; models see lengths and ignore it
    lowercase: bool = True  # fold case before looking words up
    start_token: bool = True  # begin every text with id 1, as keras.datasets.imdb does

    def __post_init__(self) -> None:
        if self.max_features <= len(RESERVED):
            raise ConfigError(f"max_features must be more than {len(RESERVED)} (the reserved ids); got {self.max_features}")
        if self.maxlen < 1:
            raise ConfigError(f"maxlen must be at least 1; got {self.maxlen}")
        for name in ("truncating", "padding"):
            if getattr(self, name) not in SIDES:
                raise ConfigError(f"{name} must be 'pre' or 'post'; got {getattr(self, name)!r}")


@dataclass
class Word2VecConfig:
    dimension: int = 128  # size of each vector (match the model's embedding_dim)
    window: int = 5  # words either side that count as context
    min_count: int = 5  # ignore words seen fewer times than this
    epochs: int = 5  # passes over the texts
    skip_gram: bool = False  # CBOW (several times faster on 2 cores); True: skip-gram, better for rare words
    negative: int = 5  # negative samples per positive pair
    workers: int = 2  # training threads
    seed: int = 0  # gensim's seed (one worker gives identical vectors run to run)

    def __post_init__(self) -> None:
        if self.dimension < 1 or self.epochs < 1 or self.window < 1 or self.min_count < 1:
            raise ConfigError("word2vec dimension, epochs, window and min_count must be at least 1")
