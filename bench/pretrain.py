"""Pretraining on IMDb's own text, then fine-tuning, end to end from a cold cache (issue #20).

    python bench/pretrain.py                   # the recipe within --budget minutes (default 30)
    python bench/pretrain.py --budgets 0,5,15  # the curve: pretraining minutes -> fine-tuned test accuracy
    python bench/pretrain.py --quick           # a few hundred reviews, tiny model: checks the script runs
    python bench/pretrain.py --recipe seq-cnn  # Johnson & Zhang's seq-CNN, fine-tuned from region embeddings
    python bench/pretrain.py --recipe seq-cnn --seq-cnn regions=false  # ... from scratch, no pretraining
    python bench/pretrain.py --recipe seq-cnn --seq-cnn region_epochs=2  # two passes of region pretraining

The language model learns from the training and unlabelled reviews; the classifier from the
training reviews, choosing its epoch on a validation share of them. The test reviews are read
only to report the final accuracy. Each stage's minutes are timed from a cold cache (a fresh
SEQLAB_CACHE folder). Also reported: accuracy on single sentences cut from test reviews (the last
sentence of at least 5 words, labelled as its review), a check on short, out-of-context inputs.
Writes bench/results/pretrain.json (pretrain-quick.json with --quick, pretrain-curve.json with --budgets,
pretrain-seq-cnn.json with --recipe seq-cnn).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402

from _common import archive_path, markdown_table, write_results  # noqa: E402

FULL = {"texts": None, "maxlen": 400, "vocabulary": 20_000, "hidden": 256, "embedding": 128, "train_size": None,
        "test_size": None, "finetune_epochs": 3, "sentences": 2000}
QUICK = {"texts": 600, "maxlen": 80, "vocabulary": 3_000, "hidden": 32, "embedding": 16, "train_size": 400,
         "test_size": 400, "finetune_epochs": 2, "sentences": 200}


# Chosen on the validation share: 1000 filters over 500, one pass of region pretraining over none or
# more (docs/pretraining.md, "Region pretraining: passes against accuracy").
SEQ_CNN = {"maxlen": 2500, "vocabulary": 30_000, "filters": 1000, "epochs": 8, "batch_size": 50, "learning_rate": 1e-3,
           "train_size": None, "test_size": None, "sentences": 2000, "regions": True, "region_texts": None,
           "region_epochs": 1}
SEQ_CNN_QUICK = {"maxlen": 400, "vocabulary": 3_000, "filters": 32, "epochs": 2, "batch_size": 32, "learning_rate": 1e-3,
                 "train_size": 400, "test_size": 400, "sentences": 200, "regions": True, "region_texts": 600,
                 "region_epochs": 1}


def sentences_of(texts: list[str], labels, count: int, which: str = "last") -> tuple[list[str], list[int]]:
    """The last (or first) sentence of at least 5 words of `count` texts drawn in a seeded random order
    (IMDb lists its reviews by label, so the first ones would all be negative), with its text's label."""
    chosen, kept = [], []
    for index in np.random.default_rng(0).permutation(len(texts)):
        text, label = texts[index], labels[index]
        parts = [p.strip() for p in re.split(r"(?<=[.!?])\s+", text.replace("<br />", " ")) if len(p.split()) >= 5]
        if parts:
            chosen.append(parts[-1] if which == "last" else parts[0])
            kept.append(int(label))
        if len(chosen) == count:
            break
    return chosen, kept


def pretrain_stage(settings: dict, minutes: float, out: Path, log) -> tuple[Path, dict]:
    """A language model trained for about `minutes`: a short calibration sizes the number of texts."""
    from seqlab.data.config import DataSource
    from seqlab.pretraining import PretrainRecipe, default_training, pretrain
    from seqlab.text.config import EncoderConfig

    model = {"hidden_size": settings["hidden"], "embedding_dim": settings["embedding"]}
    encoder = EncoderConfig(maxlen=settings["maxlen"], max_features=settings["vocabulary"])
    data = DataSource(archive=str(archive_path()) if archive_path() else None)
    started = time.perf_counter()
    texts = settings["texts"]
    if texts is None:  # calibrate: words per second on a few hundred texts
        probe = pretrain(PretrainRecipe(model=model, encoder=encoder, data=data, texts=300,
                                        training=replace(default_training(), validation_split=0.0)), out / "probe")
        rate = probe.tokens / max(probe.train_seconds, 1e-9)
        average = probe.tokens / 300
        left = minutes * 60 - (time.perf_counter() - started)
        texts = max(300, min(75_000, int(left * rate / average)))
        log(f"calibration: {rate:,.0f} words/s, {average:.0f} words per text -> {texts:,} texts")
    recipe = PretrainRecipe(model=model, encoder=encoder, data=data, texts=texts)
    result = pretrain(recipe, out / "lm", log=log)
    return out / "lm", {"minutes": (time.perf_counter() - started) / 60, "texts": texts,
                        "val_perplexity": result.val_perplexity, "words": result.tokens,
                        "words_per_second": result.tokens / max(result.train_seconds, 1e-9)}


def finetune_stage(settings: dict, init_from: Path | None, out: Path, log) -> dict:
    from seqlab.data.config import DataSource
    from seqlab.predict import load
    from seqlab.recipes import Recipe, train_recipe
    from seqlab.data.sources import load_corpus
    from seqlab.text.config import EncoderConfig
    from seqlab.training.config import TrainConfig

    data = DataSource(archive=str(archive_path()) if archive_path() else None)
    options = {"pooling": "max", "output_dropout": 0.3}
    if init_from is None:
        options |= {"hidden_size": settings["hidden"], "embedding_dim": settings["embedding"]}
    training = TrainConfig(epochs=settings["finetune_epochs"], batch_size=64, learning_rate=2e-3,
                           validation_split=0.1, schedule="slanted", discriminative=2.6 if init_from else 1.0,
                           clip_norm=1.0, restore_best=True, monitor="val_accuracy")
    started = time.perf_counter()
    recipe = Recipe(model="lstm", model_options=options, training=training, data=data,
                    encoder=EncoderConfig(maxlen=settings["maxlen"], max_features=settings["vocabulary"]),
                    train_size=settings["train_size"], test_size=settings["test_size"],
                    init_from=str(init_from) if init_from else None)
    _, result = train_recipe(recipe, out / ("finetuned" if init_from else "scratch"), log=log)
    minutes = (time.perf_counter() - started) / 60
    corpus = load_corpus(data, settings["train_size"], settings["test_size"])
    texts, labels = sentences_of(corpus.test.texts, corpus.test.labels, settings["sentences"])
    sentence = load(result.run_directory).evaluate(texts, labels)["accuracy"]
    best = result.history["val_accuracy"][result.best_epoch - 1] if result.best_epoch else None
    return {"minutes": minutes, "val_accuracy": best, "test_accuracy": result.test["accuracy"],
            "sentence_accuracy": sentence, "sentences": len(texts), "epochs": len(result.history["loss"])}


def cpu_seconds() -> float:
    """User + system seconds of this process and its finished children."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def seq_cnn_run(settings: dict, out: Path, log) -> dict:
    """The seq-cnn trained on the training reviews (its epoch chosen on their validation share), from
    scratch or, with `regions`, fine-tuned from region embeddings pretrained first on the training +
    unlabelled reviews (timed in); scored once on the test reviews and on single sentences cut from them."""
    from seqlab.data.config import DataSource
    from seqlab.data.sources import load_corpus
    from seqlab.predict import load
    from seqlab.pretraining import PretrainRecipe, default_training, pretrain
    from seqlab.recipes import Recipe, train_recipe
    from seqlab.text.config import EncoderConfig
    from seqlab.training.config import TrainConfig

    data = DataSource(archive=str(archive_path()) if archive_path() else None)
    training = TrainConfig(epochs=settings["epochs"], batch_size=settings["batch_size"],
                           learning_rate=settings["learning_rate"], validation_split=0.1, restore_best=True,
                           monitor="val_accuracy")
    encoder = EncoderConfig(maxlen=settings["maxlen"], max_features=settings["vocabulary"])
    started, cpu = time.perf_counter(), cpu_seconds()
    init_from, pretrain_minutes = None, 0.0
    if settings["regions"]:
        passes = replace(default_training("region-embedding"), epochs=settings["region_epochs"])
        regions = pretrain(PretrainRecipe(objective="region-embedding", encoder=encoder, training=passes, data=data,
                                          texts=settings["region_texts"]), out / "regions", log=log)
        init_from, pretrain_minutes = str(regions.run_directory), (time.perf_counter() - started) / 60
    recipe = Recipe(model="seq-cnn", model_options={"hidden_size": settings["filters"]}, training=training, data=data,
                    encoder=encoder, train_size=settings["train_size"], test_size=settings["test_size"],
                    init_from=init_from)
    _, result = train_recipe(recipe, out / "seq-cnn", log=log)
    minutes = (time.perf_counter() - started) / 60
    corpus = load_corpus(data, settings["train_size"], settings["test_size"])
    predictor = load(result.run_directory)
    sentences = {}
    for which in ("first", "last"):
        texts, labels = sentences_of(corpus.test.texts, corpus.test.labels, settings["sentences"], which)
        sentences[which] = predictor.evaluate(texts, labels)["accuracy"]
    best = result.history["val_accuracy"][result.best_epoch - 1] if result.best_epoch else None
    return {"pretrain_budget_minutes": 0, "pretrain_minutes": pretrain_minutes, "total_minutes": minutes, "cpu_seconds": cpu_seconds() - cpu,
            "val_accuracy": best, "test_accuracy": result.test["accuracy"], "first_sentence_accuracy": sentences["first"],
            "last_sentence_accuracy": sentences["last"], "epochs": len(result.history["loss"]),
            "best_epoch": result.best_epoch}


def run(settings: dict, minutes: float, out: Path, log) -> dict:
    """One point: pretraining for `minutes` (0: none, the classifier from scratch), then fine-tuning."""
    started = time.perf_counter()
    stages = {}
    init_from = None
    if minutes > 0:
        init_from, stages["pretrain"] = pretrain_stage(settings, minutes, out, log)
    stages["finetune"] = finetune_stage(settings, init_from, out, log)
    return {"pretrain_budget_minutes": minutes, "stages": stages, "total_minutes": (time.perf_counter() - started) / 60,
            "test_accuracy": stages["finetune"]["test_accuracy"], "val_accuracy": stages["finetune"]["val_accuracy"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--budget", type=float, default=30.0, help="end-to-end minutes; pretraining gets 60%% of it")
    parser.add_argument("--budgets", help="pretraining minutes for the curve, comma-separated (0: from scratch)")
    parser.add_argument("--quick", action="store_true", help="a few hundred reviews and a tiny model")
    parser.add_argument("--recipe", choices=("lm-lstm", "seq-cnn"), default="lm-lstm",
                        help="lm-lstm: language-model pretraining, then an LSTM; seq-cnn: the one-hot region CNN")
    parser.add_argument("--seq-cnn", action="append", default=[], metavar="KEY=VALUE",
                        help="override one of the seq-cnn recipe's settings (e.g. epochs=3, filters=300, train_size=null)")
    parser.add_argument("--out", type=Path, help="keep the runs here (default: a temporary folder, removed at the end)")
    args = parser.parse_args()
    if args.out:
        measure(args, args.out, parser)
        return
    with tempfile.TemporaryDirectory(prefix="seqlab-pretrain-") as folder:
        measure(args, Path(folder), parser)


def measure(args: argparse.Namespace, out: Path, parser: argparse.ArgumentParser) -> None:
    settings = QUICK if args.quick else FULL
    os.environ.setdefault("SEQLAB_CACHE", str(out / "cache"))  # a cold cache unless the caller gives one
    log = print
    if args.recipe == "seq-cnn":
        if args.budgets:
            parser.error("--budgets is the language model's pretraining curve; the seq-cnn recipe takes --seq-cnn regions=true")
        settings = dict(SEQ_CNN_QUICK if args.quick else SEQ_CNN)
        for item in args.seq_cnn:
            key, _, value = item.partition("=")
            if key not in settings or not value:
                parser.error(f"--seq-cnn takes KEY=VALUE with KEY one of {', '.join(settings)}; got {item!r}")
            settings[key] = json.loads(value)  # a number, true / false, or null
        point = seq_cnn_run(settings, out, log)
        print(markdown_table(["pretrain min", "minutes", "CPU seconds", "val accuracy", "test accuracy", "first sentence",
                              "last sentence"],
                             [[f"{point['pretrain_minutes']:.1f}", f"{point['total_minutes']:.1f}", f"{point['cpu_seconds']:.0f}",
                               f"{point['val_accuracy']:.4f}",
                               f"{point['test_accuracy']:.4f}", f"{point['first_sentence_accuracy']:.4f}",
                               f"{point['last_sentence_accuracy']:.4f}"]]))
        name = "pretrain-seq-cnn" + ("-quick" if args.quick else "")
        print(f"wrote {write_results(name, {'quick': args.quick, 'settings': settings, 'points': [point]})}")
        return
    if args.budgets:
        budgets = [float(b) for b in args.budgets.split(",")]
        points = [run(settings, minutes, out / f"budget-{minutes:g}", log) for minutes in budgets]
        name = "pretrain-curve" + ("-quick" if args.quick else "")
    else:
        points = [run(settings, 0.5 if args.quick else args.budget * 0.6, out / "recipe", log)]
        name = "pretrain" + ("-quick" if args.quick else "")
    rows = [[f"{p['pretrain_budget_minutes']:g}", f"{p['stages'].get('pretrain', {}).get('minutes', 0):.1f}",
             f"{p['stages']['finetune']['minutes']:.1f}", f"{p['total_minutes']:.1f}", f"{p['val_accuracy']:.4f}",
             f"{p['test_accuracy']:.4f}", f"{p['stages']['finetune']['sentence_accuracy']:.4f}"] for p in points]
    print(markdown_table(["pretrain budget min", "pretrain min", "fine-tune min", "total min", "val accuracy",
                          "test accuracy", "sentence accuracy"], rows))
    path = write_results(name, {"quick": args.quick, "settings": settings, "points": points})
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
