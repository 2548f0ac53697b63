"""Corpus sources: where labelled texts come from."""

from seqlab.data.corpus import Corpus, Split
from seqlab.data.imdb import load as load_imdb

__all__ = ["Corpus", "Split", "load_imdb"]
