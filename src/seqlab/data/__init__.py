"""Corpus sources: where labelled texts come from."""

from seqlab.lazy import lazy_exports

__all__ = ["Corpus", "Split", "load_imdb"]
__getattr__, __dir__ = lazy_exports(__name__, {"Corpus": "seqlab.data.corpus", "Split": "seqlab.data.corpus",
                                               "load_imdb": "seqlab.data.imdb:load"})
