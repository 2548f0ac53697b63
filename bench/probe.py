"""A linear probe of a `seqlab pretrain` run: how much about sentiment its body has learned.

    python bench/probe.py runs/lm                       # 1,000 training reviews, 1,000 test reviews
    python bench/probe.py runs/lm --train-size 5000 --maxlen 400 --max-features 20000

Logistic regression (scikit-learn, C 0.1, 1 and 10) on features of the frozen body, fitted on IMDb
training reviews and scored on test reviews: the recurrent states max-pooled, mean-pooled and at the
last word, and the mean of the words' vectors. The same for a body of the same shape with its initial
random weights is the floor: features no better than that have learned nothing about sentiment, and
fine-tuning from them starts no closer to a classifier. Writes bench/results/probe.json.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import archive_path, markdown_table, write_results  # noqa: E402

POOLINGS = ("max", "mean", "last", "word vectors")
STRENGTHS = (0.1, 1.0, 10.0)  # logistic regression's C


def features(model, split) -> dict:
    """The split's (texts, width) features of each kind in POOLINGS, from `model`'s frozen layers."""
    import numpy as np
    import torch

    from seqlab.models import kernels
    from seqlab.models.attention import pool
    from seqlab.training.batches import collate

    batch = collate(split, np.arange(len(split)))
    ids, lengths = batch.ids, batch.lengths  # (texts, time), (texts,)
    with torch.no_grad():
        states = kernels.run(model, ids, lengths)  # (texts, time, hidden)
        vectors = model.embedding(ids)  # (texts, time, embedding)
    return {"max": pool(states, lengths, "max"), "mean": pool(states, lengths, "mean"),
            "last": kernels.last_states(states, lengths, bidirectional=False),
            "word vectors": pool(vectors, lengths, "mean")}


def probe(model, corpus) -> dict:
    """Test accuracy of a logistic regression on each kind of feature, at each strength."""
    from sklearn.linear_model import LogisticRegression

    train, test = features(model, corpus.train), features(model, corpus.test)
    return {kind: {str(c): float(LogisticRegression(C=c, max_iter=5_000).fit(train[kind].numpy(), corpus.train.labels)
                                 .score(test[kind].numpy(), corpus.test.labels)) for c in STRENGTHS}
            for kind in POOLINGS}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run", type=Path, help="a run directory written by `seqlab pretrain`")
    parser.add_argument("--train-size", type=int, default=1_000, help="training reviews the probe is fitted on")
    parser.add_argument("--test-size", type=int, default=1_000, help="test reviews it is scored on")
    parser.add_argument("--maxlen", type=int, default=120, help="words read of each review")
    parser.add_argument("--max-features", type=int, default=5_000, help="the probe's vocabulary")
    args = parser.parse_args()

    import torch

    from seqlab.data.config import DataSource
    from seqlab.models import build_model
    from seqlab.pipeline import prepare
    from seqlab.text.config import EncoderConfig
    from seqlab.training.finetune import body_options, init_from_pretrained

    archive = archive_path()
    data = DataSource(archive=str(archive) if archive else None)
    corpus = prepare(data, EncoderConfig(maxlen=args.maxlen, max_features=args.max_features), args.train_size,
                     args.test_size).corpus
    options = body_options(args.run, {"pooling": "max"})
    results = {}
    for body in ("random", "pretrained"):
        torch.manual_seed(0)
        model = build_model("lstm", vocab_size=corpus.encoder.vocab_size, **options).eval()
        if body == "pretrained":
            print(init_from_pretrained(model, args.run, corpus.encoder))
        results[body] = probe(model, corpus)
    rows = [[body] + [" / ".join(f"{results[body][kind][str(c)]:.3f}" for c in STRENGTHS) for kind in POOLINGS]
            for body in results]
    print(markdown_table(["body (accuracy at C " + " / ".join(f"{c:g}" for c in STRENGTHS) + ")", *POOLINGS], rows))
    path = write_results("probe", {"run": str(args.run), "train": len(corpus.train), "test": len(corpus.test),
                                   "maxlen": args.maxlen, "max_features": args.max_features,
                                   "body": {key: options[key] for key in ("cell", "embedding_dim", "hidden_size", "layers")},
                                   "accuracy": results})
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
