"""seqlab's fasttext model against fastText (C++) on the same IMDb reviews, alternating.

    python bench/vs_fasttext.py             # full IMDb, all sides, bench/results/vs_fasttext.json
    python bench/vs_fasttext.py --quick     # 2,000/1,000 reviews, a few epochs: a check that it runs

Three sides. `fasttext` is the reference: fastText on the reviews' words, cleaned as seqlab's
encoder cleans them (line breaks, case, the word split) and joined by spaces, so it keeps every
word (its own vocabulary, no length cut) and tokenizes on spaces itself; the ratios are against
it. `fasttext-ids` reads seqlab's encoded ids (FAST_ENCODER) written as words ("w17 w4 ..."),
so it sees what seqlab sees: the words outside the vocabulary as one unknown word and texts cut
to maxlen. `seqlab` trains with FAST_* (docs/models.md's "fast fastText" recipe). Per round every
side trains and predicts once, the order turning between rounds; the figures are medians over
rounds. Prediction runs on 1 thread for all. fastText comes from the optional `bench` extra
(pip install 'seqlab[bench]'); without it only seqlab's side runs, and the output says so.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import archive_path, markdown_table, write_results  # noqa: E402

FAST_ENCODER = {"max_features": 60_000, "maxlen": 2_500}  # docs/models.md's "fast fastText" recipe
FAST_MODEL = {"embedding_dim": 32, "ngrams": 2, "buckets": 230_000, "sparse_gradients": True, "binary": True}
FAST_TRAINING = {"epochs": 3, "batch_size": 8, "learning_rate": 16.0, "optimizer": "sgd", "schedule": "linear",
                 "validation_split": 0.0}
QUICK_TRAINING = {"epochs": 5}  # 2,000 reviews: more passes over fewer texts
FASTTEXT = {"wordNgrams": 2, "epoch": 10, "thread": 2, "verbose": 0}  # the fastText: bigrams, 10 epochs


def id_lines(split, path: Path, shuffle: bool) -> Path:
    """fastText's input file of an encoded split: each text's ids written as words."""
    encoded = split.encoded
    return _write_lines(path, (" ".join(f"w{token}" for token in encoded.sequence(row)) for row in range(len(split))),
                        split.labels, shuffle)


def word_lines(texts: list[str], labels, encoder, path: Path, shuffle: bool) -> Path:
    """fastText's input file of raw texts: each text's words, cleaned and split as `encoder` does, joined by spaces."""
    tokenizer = encoder.tokenizer
    assert tokenizer.normalizer is not None and tokenizer.pre_tokenizer is not None  # TextEncoder sets both
    words = (" ".join(word for word, _ in tokenizer.pre_tokenizer.pre_tokenize_str(tokenizer.normalizer.normalize_str(text)))
             for text in texts)
    return _write_lines(path, words, labels, shuffle)


def _write_lines(path: Path, texts, labels, shuffle: bool) -> Path:
    """A fastText input file; a training file is shuffled (seed 0): fastText reads its file in order, and
    IMDb's reviews come sorted by label, which leaves its linearly decaying rate learning one label last."""
    lines = [f"__label__{int(label)} {text}\n" for text, label in zip(texts, labels)]
    if shuffle:
        random.Random(0).shuffle(lines)
    path.write_text("".join(lines))
    return path


def run_fasttext(fasttext, train: Path, test: Path, epochs: int, folder: Path, quantize: bool) -> dict:
    started = time.perf_counter()
    model = fasttext.train_supervised(input=str(train), **{**FASTTEXT, "epoch": epochs})
    seconds = time.perf_counter() - started
    lines = test.read_text().splitlines()
    labels = [line.split(" ", 1)[0] for line in lines]
    texts = [line.split(" ", 1)[1] if " " in line else "" for line in lines]
    started = time.perf_counter()
    predicted, _ = model.predict(texts)  # one thread
    per_second = len(texts) / (time.perf_counter() - started)
    model.save_model(str(folder / "fasttext.bin"))
    result = {"train_seconds": seconds, "test_accuracy": _share(predicted, labels), "reviews_per_second": per_second,
              "model_bytes": (folder / "fasttext.bin").stat().st_size}
    if quantize:
        model.quantize(input=str(train), retrain=False, cutoff=100_000)
        model.save_model(str(folder / "fasttext.ftz"))
        result |= {"quantized_bytes": (folder / "fasttext.ftz").stat().st_size,
                   "quantized_accuracy": _share(model.predict(texts)[0], labels)}
    return result


def _share(predicted, labels) -> float:
    return sum(p[0] == label for p, label in zip(predicted, labels)) / max(len(labels), 1)


def run_seqlab(corpus, quick: bool, folder: Path) -> dict:
    import torch

    from seqlab.evaluation.predicting import evaluate
    from seqlab.runs import quantize_run
    from seqlab.pipeline import train_model
    from seqlab.runs import load_run
    from seqlab.training.config import TrainConfig

    torch.set_num_threads(2)
    config = TrainConfig(**{**FAST_TRAINING, **(QUICK_TRAINING if quick else {})})
    _, result = train_model("fasttext", corpus, config, out=folder / "seqlab", **FAST_MODEL)
    torch.set_num_threads(1)
    run = load_run(folder / "seqlab")
    started = time.perf_counter()
    evaluate(run.model, corpus.test, threads=1)
    per_second = len(corpus.test) / (time.perf_counter() - started)
    quantized = quantize_run(folder / "seqlab", folder / "seqlab-int8")
    scores = evaluate(load_run(quantized).model, corpus.test, threads=1)
    torch.set_num_threads(2)
    return {"train_seconds": result.train_seconds, "test_accuracy": result.test["accuracy"],
            "reviews_per_second": per_second, "model_bytes": (folder / "seqlab" / "model.safetensors").stat().st_size,
            "quantized_bytes": (quantized / "model.safetensors").stat().st_size,
            "quantized_accuracy": scores["accuracy"]}


def medians(rounds: list[dict]) -> dict:
    return {key: statistics.median(r[key] for r in rounds) for key in rounds[0]} if rounds else {}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="2,000/1,000 reviews, fastText 2 epochs, seqlab QUICK_TRAINING, no fastText .ftz")
    parser.add_argument("--rounds", type=int, default=1, help="rounds of (fastText, fastText on ids, seqlab), the order turning")
    parser.add_argument("--no-fasttext", action="store_true", help="seqlab's side only")
    options = parser.parse_args()

    from seqlab.data.sources import DataSource, load_corpus
    from seqlab.pipeline import prepare
    from seqlab.text.encoder import EncoderConfig

    try:
        import fasttext
    except ImportError:
        fasttext = None
    if options.no_fasttext:
        fasttext = None
    if fasttext is None:
        print("fastText is not installed (pip install 'seqlab[bench]'): running seqlab's side only")
    archive = archive_path()
    sizes = (2_000, 1_000) if options.quick else (None, None)
    data = DataSource(data="imdb", archive=str(archive) if archive else None)
    corpus = prepare(data, EncoderConfig(**FAST_ENCODER), *sizes).corpus
    fasttext_epochs = 2 if options.quick else FASTTEXT["epoch"]
    names = ["fasttext", "fasttext-ids", "seqlab"] if fasttext is not None else ["seqlab"]
    sides: dict[str, list[dict]] = {name: [] for name in names}
    with tempfile.TemporaryDirectory(prefix="vs-fasttext-") as scratch:
        folder = Path(scratch)
        files = {}
        if fasttext is not None:
            raw = load_corpus(data, *sizes)  # the same reviews, in the same order, as `corpus`
            files["fasttext"] = tuple(word_lines(split.texts, split.labels, corpus.encoder, folder / f"{name}-words.txt",
                                                 shuffle=name == "train")
                                      for name, split in (("train", raw.train), ("test", raw.test)))
            files["fasttext-ids"] = (id_lines(corpus.train, folder / "train-ids.txt", shuffle=True),
                                     id_lines(corpus.test, folder / "test-ids.txt", shuffle=False))
        for round_ in range(options.rounds):
            turn = round_ % len(names)
            for side in names[turn:] + names[:turn]:
                if side == "seqlab":
                    sides[side].append(run_seqlab(corpus, options.quick, folder))
                else:
                    sides[side].append(run_fasttext(fasttext, *files[side], fasttext_epochs, folder,
                                                    quantize=not options.quick))
    figures = {side: medians(rounds) for side, rounds in sides.items() if rounds}
    ratios = {}
    if "fasttext" in figures:
        ft, sl = figures["fasttext"], figures["seqlab"]
        ratios = {"train_seconds seqlab/fasttext": sl["train_seconds"] / ft["train_seconds"],
                  "reviews_per_second seqlab/fasttext": sl["reviews_per_second"] / ft["reviews_per_second"],
                  "model_bytes seqlab/fasttext": sl["model_bytes"] / ft["model_bytes"],
                  "test_accuracy seqlab-fasttext": sl["test_accuracy"] - ft["test_accuracy"],
                  "test_accuracy seqlab-fasttext-ids": sl["test_accuracy"] - figures["fasttext-ids"]["test_accuracy"]}
    keys = ["train_seconds", "test_accuracy", "reviews_per_second", "model_bytes", "quantized_bytes", "quantized_accuracy"]
    rows = [[side] + [_cell(figures[side].get(key)) for key in keys] for side in figures]
    print(markdown_table(["side"] + keys, rows))
    for name, value in ratios.items():
        print(f"{name}: {value:.3f}")
    path = write_results("vs_fasttext-quick" if options.quick else "vs_fasttext", {
        "quick": options.quick, "fasttext_installed": fasttext is not None, "rounds": sides, "medians": figures,
        "ratios": ratios, "train": len(corpus.train), "test": len(corpus.test),
        "settings": {"encoder": FAST_ENCODER, "model": FAST_MODEL, "training": {**FAST_TRAINING, **(QUICK_TRAINING if options.quick else {})},
                     "fasttext": {**FASTTEXT, "epoch": fasttext_epochs}}})
    print(f"wrote {path}")


def _cell(value) -> str:
    if value is None:
        return "-"
    return f"{value:,.4f}" if isinstance(value, float) and value < 10 else f"{value:,.0f}"


if __name__ == "__main__":
    main()
