"""The lecture's Keras model, trained and timed on arrays prepared by vs_keras.py.

Runs in a Python with TensorFlow (the `bench` extra: `make bench-keras-setup`); imports nothing of seqlab.
Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import peak_memory_mb  # noqa: E402  (VmHWM: this process's own peak, not its parent's)

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
import tensorflow as tf  # noqa: E402
from tensorflow import keras  # noqa: E402

LAYERS = {"rnn": keras.layers.SimpleRNN, "lstm": keras.layers.LSTM, "gru": keras.layers.GRU}


class EpochTimer(keras.callbacks.Callback):
    def on_train_begin(self, logs=None):
        self.seconds = []

    def on_epoch_begin(self, epoch, logs=None):
        self.started = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.seconds.append(time.perf_counter() - self.started)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", required=True)
    parser.add_argument("--model", choices=list(LAYERS), required=True)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--latency-samples", type=int, default=200)
    args = parser.parse_args()
    load = lambda name: np.load(os.path.join(args.data, f"{name}.npy"))  # noqa: E731
    x_train, y_train, x_test, y_test = load("x_train"), load("y_train"), load("x_test"), load("y_test")
    keras.utils.set_random_seed(42)

    # The lecture's code, unchanged apart from the layer choice.
    model = keras.Sequential([
        keras.layers.Input(shape=(x_train.shape[1],)),
        keras.layers.Embedding(10000, 128),
        LAYERS[args.model](64),
        keras.layers.Dense(1, activation="sigmoid"),
    ])
    model.compile(optimizer="adam", loss="binary_crossentropy", metrics=["accuracy"])
    timer = EpochTimer()
    history = model.fit(x_train, y_train, epochs=args.epochs, batch_size=128, validation_split=0.2,
                        verbose=0, callbacks=[timer])
    train_peak = peak_memory_mb()

    started = time.perf_counter()
    probabilities = model.predict(x_test, batch_size=512, verbose=0)[:, 0]
    inference_seconds = time.perf_counter() - started
    test_loss, test_accuracy = model.evaluate(x_test, y_test, batch_size=512, verbose=0)

    latencies = []
    for row in range(args.latency_samples):
        single = x_test[row : row + 1]
        started = time.perf_counter()
        model(single, training=False).numpy()
        latencies.append(time.perf_counter() - started)

    print(json.dumps({
        "framework": f"keras {keras.__version__} / tensorflow {tf.__version__}",
        "model": args.model,
        "epoch_seconds": timer.seconds,
        "val_accuracy": [float(v) for v in history.history["val_accuracy"]],
        "test_accuracy": float(test_accuracy),
        "test_loss": float(test_loss),
        "accuracy_from_predict": float(((probabilities > 0.5) == y_test).mean()),
        "inference_seconds": inference_seconds,
        "reviews_per_second": len(x_test) / inference_seconds,
        "latency_ms_p50": float(np.median(latencies) * 1000),
        "latency_ms_p99": float(np.percentile(latencies, 99) * 1000),
        "peak_memory_mb": peak_memory_mb(),
        "train_peak_memory_mb": train_peak,
    }))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
