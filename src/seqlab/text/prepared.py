"""Corpora larger than memory: tokenize once into memory-mapped arrays, train from them.

    DIR/manifest.json             splits, sizes, dtypes, label names, the source's fingerprint, text
                                  figures (duplicates, overlap); written last
    DIR/encoder.json              the encoder every chunk was encoded with
    DIR/SPLIT/ids.npy             (tokens,) uint16 (or int32 for vocabularies over 65,536) token ids, flat
    DIR/SPLIT/offsets.npy         (texts + 1,) int64: text i is ids[offsets[i]:offsets[i + 1]]
    DIR/SPLIT/full_lengths.npy    (texts,) int64 lengths before cutting to maxlen
    DIR/SPLIT/labels.npy          (texts,) int64

Preparation reads the source in chunks of texts and encodes them in parallel worker
processes; each finished chunk is written atomically under DIR/.chunks, so a rerun after an
interruption skips what is done. The chunks are then appended into the flat arrays with plain
file writes (memory stays at about one chunk) and removed. Training opens the arrays with
np.load(mmap_mode="r"): batches read only the pages of the texts they contain.

Such a folder is a data source like any other: `pipeline.prepare(DataSource(data=DIR))`
opens it (sources.py recognises it by its manifest).
"""

from __future__ import annotations

import multiprocessing
import os
import shutil
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import IO, Callable, Mapping, Protocol

import numpy as np

from seqlab.data.corpus import balanced_sample
from seqlab.data.config import PREPARED_CHUNKS, PREPARED_MANIFEST, DataSource
from seqlab.data.sources import SUBSET_SEED, load_corpus
from seqlab.errors import ConfigError, DataError
from seqlab.files import atomic_path, write_json, write_text
from seqlab.text.cache import EncodedCorpus, EncodedSplit, EncodedView
from seqlab.text.encoder import EncoderConfig, TextEncoder
from seqlab.text.summary import text_figures
from seqlab.jsonfile import read_json, read_text

PREPARED_FORMAT = 1
ARRAYS = ("ids", "offsets", "full_lengths", "labels")


class TextSource(Protocol):
    """Labelled texts that can be read by position range; must pickle (workers read their own chunks)."""

    def __len__(self) -> int: ...
    def read(self, start: int, stop: int) -> tuple[list[str], np.ndarray]: ...


@dataclass(frozen=True)
class InMemorySource:
    texts: list[str]
    labels: np.ndarray

    def __len__(self) -> int:
        return len(self.texts)

    def read(self, start: int, stop: int) -> tuple[list[str], np.ndarray]:
        return self.texts[start:stop], np.asarray(self.labels[start:stop], dtype=np.int64)


class _Slice:
    """Texts already in memory, cut to one chunk so that a job does not carry the whole list to its worker."""

    def __init__(self, texts: list[str], labels: np.ndarray, start: int):
        self.texts, self.labels, self.start = texts, labels, start

    def read(self, start: int, stop: int) -> tuple[list[str], np.ndarray]:
        return self.texts[start - self.start : stop - self.start], self.labels[start - self.start : stop - self.start]


def _job_source(source: TextSource, start: int, stop: int) -> TextSource | _Slice:
    if isinstance(source, InMemorySource):
        return _Slice(*source.read(start, stop), start)
    return source


def _chunk_path(out: Path, split: str, index: int) -> Path:
    return out / PREPARED_CHUNKS / f"{split}-{index:06d}.npz"


def _encode_chunk(job: tuple) -> int:
    """Worker: encode texts [start, stop) of one split and write them as one atomic .npz file."""
    source, encoder_json, path, start, stop = job
    encoder = _worker_encoder(encoder_json)
    texts, labels = source.read(start, stop)
    encoded = encoder.encode(texts)  # the bulk path of text/words.py
    ids, lengths, full = encoded.ids, encoded.lengths, encoded.full_lengths
    with atomic_path(Path(path)) as temporary:
        with open(temporary, "wb") as handle:
            np.savez(handle, ids=ids, lengths=lengths, full_lengths=full, labels=np.asarray(labels, dtype=np.int64))
    return stop - start


_ENCODERS: dict[str, TextEncoder] = {}


def _worker_encoder(document: str) -> TextEncoder:
    if document not in _ENCODERS:
        _ENCODERS.clear()
        _ENCODERS[document] = TextEncoder.from_json(document)
    return _ENCODERS[document]


def _append_arrays(out: Path, split: str, chunks: list[Path], vocab_size: int) -> dict:
    """Concatenate the chunk files into the split's flat arrays; returns sizes and dtypes."""
    ids_dtype = np.dtype(np.uint16 if vocab_size <= 65_536 else np.int32)
    totals = {"texts": 0, "tokens": 0}
    for chunk in chunks:
        with np.load(chunk) as data:
            totals["texts"] += len(data["labels"])
            totals["tokens"] += int(data["lengths"].sum())
    shapes = {"ids": totals["tokens"], "offsets": totals["texts"] + 1, "full_lengths": totals["texts"], "labels": totals["texts"]}
    dtypes = {"ids": ids_dtype, "offsets": np.dtype(np.int64), "full_lengths": np.dtype(np.int64), "labels": np.dtype(np.int64)}
    directory = out / split
    directory.mkdir(parents=True, exist_ok=True)
    with _ArrayWriters(directory, shapes, dtypes) as writers:
        writers["offsets"].write(np.zeros(1, dtype=np.int64))
        position = 0
        for chunk in chunks:
            with np.load(chunk) as data:
                writers["ids"].write(data["ids"].astype(ids_dtype))
                writers["offsets"].write(position + np.cumsum(data["lengths"]))
                writers["full_lengths"].write(data["full_lengths"])
                writers["labels"].write(data["labels"])
                position += int(data["lengths"].sum())
    return {**totals, "ids_dtype": ids_dtype.name}


class _ArrayWriters(dict):
    """One .npy file per array, written front to back with plain writes (no mapped dirty pages)."""

    def __init__(self, directory: Path, shapes: dict[str, int], dtypes: dict[str, np.dtype]):
        super().__init__()
        self.directory, self.shapes, self.dtypes = directory, shapes, dtypes

    def __enter__(self):
        for name in ARRAYS:
            handle = open(self.directory / f".{name}.npy.tmp", "wb")
            header = {"descr": np.lib.format.dtype_to_descr(self.dtypes[name]), "fortran_order": False,
                      "shape": (self.shapes[name],)}
            np.lib.format.write_array_header_2_0(handle, header)
            self[name] = _Writer(handle, self.dtypes[name])
        return self

    def __exit__(self, kind, value, traceback):
        for name, writer in self.items():
            writer.handle.flush()
            os.fsync(writer.handle.fileno())
            writer.handle.close()
            temporary = self.directory / f".{name}.npy.tmp"
            if kind is None:
                os.replace(temporary, self.directory / f"{name}.npy")
            else:
                temporary.unlink(missing_ok=True)


@dataclass
class _Writer:
    handle: IO[bytes]
    dtype: np.dtype

    def write(self, array: np.ndarray) -> None:
        self.handle.write(np.ascontiguousarray(array, dtype=self.dtype).tobytes())


def prepare(
    sources: Mapping[str, TextSource],
    out: str | Path,
    encoder_config: EncoderConfig | None = None,
    label_names: tuple[str, ...] = ("neg", "pos"),
    name: str = "corpus",
    chunk_size: int = 20_000,
    workers: int | None = None,
    vocabulary_texts: int = 200_000,
    progress: Callable[[str, int, int], None] | None = None,
    fingerprint: str | None = None,
    figures: dict | None = None,
) -> Path:
    """Encode `sources` (split name -> texts; "train" required) into memory-mapped arrays at `out`.

    The vocabulary is fitted on the first `vocabulary_texts` training texts (all of them for
    IMDb-sized corpora). Resumable: a rerun reuses the encoder and the chunks already written.
    `fingerprint` (sources.fingerprint of the data) and `figures` (text/summary.py's TextFigures) go into
    the manifest; a rerun with another fingerprint is refused rather than mixing two corpora.
    """
    out = Path(out)
    marker = out / PREPARED_CHUNKS / "source"
    if (out / PREPARED_MANIFEST).is_file():
        _check_source(out, read_manifest(out).get("source"), fingerprint)
        return out
    if "train" not in sources or len(sources["train"]) == 0:
        raise DataError("prepare needs a non-empty 'train' split")
    workers = max(1, workers or os.cpu_count() or 1)
    if marker.is_file():  # resuming: the chunks already written are of the data recorded here
        _check_source(out, marker.read_text() or None, fingerprint)
        fingerprint = fingerprint or marker.read_text() or None
    else:
        write_text(marker, fingerprint or "")
    encoder_path = out / "encoder.json"
    if encoder_path.is_file():  # resuming: keep the encoder the finished chunks were made with
        encoder = TextEncoder.from_json(read_text(encoder_path, DataError), out)
        if encoder_config is not None and asdict(encoder.config) != asdict(encoder_config):
            raise DataError(f"{out} holds a preparation with other encoder settings ({asdict(encoder.config)}); "
                            "use another --out or delete it")
    else:
        texts, _ = sources["train"].read(0, min(len(sources["train"]), vocabulary_texts))
        encoder = TextEncoder.fit(texts, encoder_config)
        with atomic_path(encoder_path) as temporary:
            temporary.write_text(encoder.to_json())
    document = encoder.to_json()
    jobs, chunk_lists = [], {}
    for split, source in sources.items():
        bounds = [(start, min(start + chunk_size, len(source))) for start in range(0, len(source), chunk_size)]
        chunk_lists[split] = [_chunk_path(out, split, i) for i in range(len(bounds))]
        jobs += [(_job_source(source, start, stop), document, str(path), start, stop)
                 for path, (start, stop) in zip(chunk_lists[split], bounds) if not path.is_file()]
    total = sum(len(source) for source in sources.values())
    done = total - sum(stop - start for *_, start, stop in jobs)
    if progress:
        progress("encode", done, total)
    if jobs:
        context = multiprocessing.get_context("spawn")  # fork would copy the tokenizer's thread pool
        with context.Pool(min(workers, len(jobs))) as pool:
            for count in pool.imap_unordered(_encode_chunk, jobs):
                done += count
                if progress:
                    progress("encode", done, total)
    splits = {split: _append_arrays(out, split, chunks, encoder.vocab_size) for split, chunks in chunk_lists.items()}
    write_json(out / PREPARED_MANIFEST, {
        "format": PREPARED_FORMAT, "name": name, "label_names": list(label_names), "splits": splits,
        "encoder": asdict(encoder.config), "vocab_size": encoder.vocab_size, "source": fingerprint,
        "text": figures,
    })
    shutil.rmtree(out / PREPARED_CHUNKS, ignore_errors=True)
    return out


def _check_source(out: Path, recorded: str | None, given: str | None) -> None:
    if given is not None and recorded is not None and recorded != given:
        raise DataError(f"{out} holds a preparation of other data ({recorded}); use another --out or delete it")


def prepare_source(
    source: DataSource,
    out: str | Path,
    encoder_config: EncoderConfig | None = None,
    chunk_size: int = 20_000,
    workers: int | None = None,
    progress: Callable[[str, int, int], None] | None = None,
) -> Path:
    """Any data source (`--data`) read and prepared at `out`, its fingerprint and text figures in the manifest."""
    corpus = load_corpus(source)
    sources = {"train": InMemorySource(corpus.train.texts, corpus.train.labels),
               "test": InMemorySource(corpus.test.texts, corpus.test.labels)}
    return prepare(sources, out, encoder_config, corpus.label_names, name=corpus.name, chunk_size=chunk_size,
                   workers=workers, progress=progress, fingerprint=corpus.fingerprint,
                   figures=asdict(text_figures(corpus)))


def open_split(directory: Path, split: str) -> EncodedSplit:
    """One prepared split, memory-mapped: nothing but its per-text arrays is read into memory."""
    arrays = {name: np.load(directory / split / f"{name}.npy", mmap_mode="r") for name in ARRAYS}
    offsets = np.array(arrays["offsets"])  # (texts + 1,) small: 8 bytes per text
    view = EncodedView(arrays["ids"], offsets[:-1], np.diff(offsets), np.array(arrays["full_lengths"]))
    return EncodedSplit(view, np.array(arrays["labels"]))


def read_manifest(directory: str | Path) -> dict:
    """The manifest of the finished preparation at `directory`, checked for its format."""
    directory = Path(directory)
    manifest_path = directory / PREPARED_MANIFEST
    if not manifest_path.is_file():
        hint = " (unfinished: rerun `seqlab data prepare` to complete it)" if (directory / PREPARED_CHUNKS).is_dir() else ""
        raise DataError(f"no prepared corpus at {directory}{hint}; make one with `seqlab data prepare DATA --out {directory}`")
    manifest = read_json(manifest_path, error=DataError, fix=f"prepare it again with `seqlab data prepare DATA --out {directory}`")
    if manifest.get("format") != PREPARED_FORMAT:
        raise DataError(f"{directory} was prepared in format {manifest.get('format')!r}; this seqlab reads "
                        f"{PREPARED_FORMAT}: prepare it again")
    return manifest


def open_prepared(directory: str | Path) -> EncodedCorpus:
    """A prepared corpus as an EncodedCorpus whose token ids stay on disk (no test split: an empty one).

    Reading a prepared folder as a data source goes through `pipeline.prepare`, which calls this."""
    directory = Path(directory)
    manifest = read_manifest(directory)
    encoder = TextEncoder.from_json(read_text(directory / "encoder.json", DataError, "prepare it again"))
    train = open_split(directory, "train")
    if "test" in manifest["splits"]:
        test = open_split(directory, "test")
    else:
        test = train.select(np.zeros(0, dtype=np.int64))
    return EncodedCorpus(manifest["name"], encoder, train, test, tuple(manifest["label_names"]))


def open_source(source: DataSource, encoder_config: EncoderConfig | None = None, train_size: int | None = None,
                test_size: int | None = None) -> tuple[EncodedCorpus, dict]:
    """The prepared folder `source` names, opened for `pipeline.prepare`: the corpus and its text figures.

    A subset is a selection of positions: the reviews `train_size`/`test_size` draw from the data
    it was made from. Options that cannot apply to a folder already encoded are errors naming them."""
    refused = [f"--{name.replace('_', '-')}" for name, value in asdict(source).items()
               if name not in ("data", "archive") and value != getattr(DataSource(), name)]
    corpus = open_prepared(source.data)
    if encoder_config is not None:
        kept = asdict(corpus.encoder.config)
        refused += [f"--{name.replace('_', '-')} {value} (it was prepared with {kept[name]})"
                    for name, value in asdict(encoder_config).items() if value != kept[name]]
    if refused:
        raise ConfigError(f"{source.data} is a prepared corpus, with its own splits and tokens encoded once: "
                          f"{'; '.join(refused)} cannot apply to it; drop {'it' if len(refused) == 1 else 'them'} "
                          "or prepare it again with other settings")
    splits = {}
    for name, size in (("train", train_size), ("test", test_size)):
        split = getattr(corpus, name)
        indices = balanced_sample(split.labels, size, SUBSET_SEED, name)
        splits[name] = split if indices is None else split.select(indices)
    return replace(corpus, **splits), read_manifest(source.data).get("text") or {}
