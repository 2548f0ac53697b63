"""What a corpus holds, shown before training: classes, lengths, vocabulary coverage, duplicates.

The text-level figures (duplicates, train/test overlap) need the raw texts, so they are
computed once when the corpus is read and cached beside the encoded arrays; the token-level
figures come from the encoded arrays.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, field

import numpy as np

from seqlab.data.corpus import Corpus
from seqlab.text.cache import EncodedCorpus, EncodedSplit
from seqlab.text.encoder import START, UNKNOWN

PERCENTILES = (50, 90, 95, 99)
IMBALANCE = 10  # warn when the largest class has this many times the texts of the smallest


@dataclass
class TextFigures:
    """Figures that need the raw texts."""

    train_duplicates: int = 0  # training texts that repeat an earlier training text
    test_duplicates: int = 0
    overlap: int = 0  # test texts that also occur among the training texts
    overlap_examples: list[str] = field(default_factory=list)  # the first few, shortened


@dataclass
class DataSummary:
    name: str
    label_names: list[str]
    train_counts: list[int]  # texts per class, in label order
    test_counts: list[int]
    length_percentiles: dict[str, float]  # tokens per training text before cutting: p50, p90, ..., max
    maxlen: int
    cut_share: float  # share of training texts longer than maxlen
    train_coverage: float  # share of the tokens models read that are in the vocabulary
    test_coverage: float
    vocab_size: int
    text: TextFigures
    warnings: list[str]

    def to_dict(self) -> dict:
        return asdict(self)


def text_figures(corpus: Corpus, examples: int = 3) -> TextFigures:
    train_seen = Counter(text.strip() for text in corpus.train.texts)
    test_seen = Counter(text.strip() for text in corpus.test.texts)
    shared = [text for text in test_seen if text in train_seen]
    return TextFigures(
        train_duplicates=sum(train_seen.values()) - len(train_seen),
        test_duplicates=sum(test_seen.values()) - len(test_seen),
        overlap=sum(test_seen[text] for text in shared),
        overlap_examples=[text[:80] for text in shared[:examples]],
    )


COVERAGE_BLOCK = 1 << 24  # tokens counted at a time: a memory-mapped corpus is read, never held, whole


def _coverage(split: EncodedSplit) -> float:
    ids = split.encoded.ids
    words = known = 0
    for start in range(0, len(ids), COVERAGE_BLOCK):
        block = np.asarray(ids[start : start + COVERAGE_BLOCK])
        words += int((block != START).sum())
        known += int(((block != START) & (block != UNKNOWN)).sum())
    return known / words if words else 1.0


def summarize(corpus: EncodedCorpus, text: TextFigures) -> DataSummary:
    classes = len(corpus.label_names)
    train_counts = np.bincount(corpus.train.labels, minlength=classes).tolist()
    test_counts = np.bincount(corpus.test.labels, minlength=classes).tolist()
    full = corpus.train.encoded.full_lengths
    percentiles = {f"p{p}": float(np.percentile(full, p)) for p in PERCENTILES} if len(full) else {}
    percentiles["max"] = float(full.max()) if len(full) else 0.0
    maxlen = corpus.encoder.config.maxlen
    summary = DataSummary(
        name=corpus.name, label_names=list(corpus.label_names), train_counts=train_counts, test_counts=test_counts,
        length_percentiles=percentiles, maxlen=maxlen, cut_share=float((full > maxlen).mean()) if len(full) else 0.0,
        train_coverage=_coverage(corpus.train), test_coverage=_coverage(corpus.test),
        vocab_size=corpus.encoder.vocab_size, text=text, warnings=[],
    )
    summary.warnings = _warnings(summary)
    return summary


def _warnings(s: DataSummary) -> list[str]:
    found = []
    if s.text.overlap:
        found.append(f"{s.text.overlap:,} test text(s) also occur in the training texts, so test scores overstate "
                     f"how well the model does on new text (e.g. {s.text.overlap_examples[0]!r}); "
                     "remove them from one side")
    if s.text.train_duplicates:
        found.append(f"{s.text.train_duplicates:,} training text(s) repeat an earlier one")
    smallest, largest = min(s.train_counts), max(s.train_counts)
    if smallest == 0 or largest / smallest >= IMBALANCE:
        found.append(f"classes are imbalanced ({largest:,} vs {smallest:,} training texts); accuracy alone can mislead")
    missing = [name for name, count in zip(s.label_names, s.test_counts) if count == 0]
    if missing:
        found.append(f"no test texts of class {', '.join(missing)}")
    if s.cut_share > 0.5:
        found.append(f"{s.cut_share:.0%} of training texts are longer than maxlen {s.maxlen} and get cut")
    if s.test_coverage < 0.8:
        found.append(f"only {s.test_coverage:.0%} of test tokens are in the vocabulary; consider a larger max_features")
    return found
