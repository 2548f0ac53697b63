"""Command-line options: each declared once (typer aliases), and the set `seqlab train` and
`seqlab compare` share, handed to them as one RunOptions. Their defaults come from the config
dataclasses, whose modules import nothing heavy, so `--help` loads no torch or numpy.

No postponed annotations here: typer reads the aliases when commands are defined, and
`takes_options` builds command signatures from real annotation objects.
"""

import functools
import inspect
import io
import tokenize
import types
import typing
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Annotated, Any, Callable, Optional

import typer

from seqlab.data.config import DataSource
from seqlab.text.config import EncoderConfig
from seqlab.training.config import TrainConfig


def default(config_class, name: str):
    """Defaults live in the config dataclasses; the CLI only surfaces them."""
    return next(f.default for f in fields(config_class) if f.name == name)


Archive = Annotated[Optional[Path], typer.Option(help="Local copy of aclImdb_v1.tar.gz (else $SEQLAB_IMDB_ARCHIVE, else download).")]
Epochs = Annotated[int, typer.Option(help="Passes over the training reviews.")]
BatchSize = Annotated[int, typer.Option(help="Reviews per gradient step.")]
LearningRate = Annotated[float, typer.Option(help="The optimizer's learning rate.")]
Optimizer = Annotated[str, typer.Option(help="adam, sgd (plain SGD) or adagrad; with --sparse-gradients the last two update only the rows a batch touched.")]
ValidationSplit = Annotated[float, typer.Option(help="Share of training reviews held out (the last, after shuffling).")]
Seed = Annotated[int, typer.Option(help="Seeds the split, weights, batch order: same seed, same numbers.")]
MaxFeatures = Annotated[int, typer.Option(help="Vocabulary size, reserved ids included (Keras num_words).")]
Maxlen = Annotated[int, typer.Option(help="Tokens kept per review.")]
Truncating = Annotated[str, typer.Option(help="Which end of a long review is cut: pre (keep the end) or post.")]
Padding = Annotated[str, typer.Option(help="Side of padding in fixed-length arrays (models ignore padding either way).")]
EmbeddingDim = Annotated[Optional[int], typer.Option(help="Size of each word vector (default: the model's, 128; with --embeddings: the file's).")]
HiddenSize = Annotated[Optional[int], typer.Option(help="Units per recurrent layer and direction (transformer: feed-forward width).")]
Layers = Annotated[Optional[int], typer.Option(help="Layers stacked (recurrent or transformer); default 1 recurrent, 2 transformer.")]
Pooling = Annotated[Optional[str], typer.Option(help="How time steps become one vector: last, mean, max, attention (transformer: mean, max, first, attention).")]
Heads = Annotated[Optional[int], typer.Option(help="Attention heads per transformer layer.")]
Ngrams = Annotated[Optional[int], typer.Option(help="fasttext: longest word n-gram with a vector of its own (1: words only; default 2).")]
Buckets = Annotated[Optional[int], typer.Option(help="fasttext: rows of the hashed n-gram table; n-grams beyond it share rows (default 262,144).")]
EmbeddingDropout = Annotated[Optional[float], typer.Option(help="Dropout on word vectors (default 0 for recurrent models).")]
WordDropout = Annotated[Optional[float], typer.Option(help="Share of words whose whole vector is dropped while training (recurrent models).")]
RecurrentDropout = Annotated[Optional[float], typer.Option(help="Dropout between stacked recurrent layers.")]
OutputDropout = Annotated[Optional[float], typer.Option(help="Dropout before the output layer.")]
Embeddings = Annotated[Optional[str], typer.Option(help="Pretrained vectors: 'word2vec' (trained on unlabelled + training reviews, cached), or a GloVe .txt / word2vec-fastText .vec / word2vec .bin file.")]
SparseGradients = Annotated[bool, typer.Option(help="fasttext, seq-cnn: sparse gradients for their tables (needs --optimizer sgd or adagrad; fasttext: no word/embedding dropout).")]
Binary = Annotated[bool, typer.Option(help="fasttext: count each distinct word and n-gram once in a text's mean (NB-LR's binary counts).")]
FreezeEmbeddings = Annotated[bool, typer.Option(help="Keep pretrained vectors fixed (default: fine-tune them).")]
WeightDecay = Annotated[float, typer.Option(help="Decoupled weight decay (AdamW); 0 keeps plain Adam.")]
ClipNorm = Annotated[Optional[float], typer.Option(help="Clip the gradients' global norm to this value.")]
Schedule = Annotated[str, typer.Option(help="Learning-rate schedule: none, plateau, cosine, slanted (slanted triangular: warm up, then fall) or linear (to 0 over all batches, fastText's).")]
Warmup = Annotated[float, typer.Option(help="Slanted schedule: share of all batches spent rising to the learning rate.")]
Discriminative = Annotated[float, typer.Option(help="Each layer below the top learns this many times slower (fine-tuning; ULMFiT 2.6); 1: one rate.")]
GradualUnfreezing = Annotated[bool, typer.Option(help="Epoch 1 trains the top layer only, each further epoch one layer more (fine-tuning).")]
Patience = Annotated[Optional[int], typer.Option(help="Early stopping: stop after this many epochs without improvement.")]
RestoreBest = Annotated[bool, typer.Option(help="End with the weights of the best validation epoch.")]
Monitor = Annotated[str, typer.Option(help="What early stopping and the best checkpoint watch: val_loss or val_accuracy.")]
TrainSize = Annotated[Optional[int], typer.Option(help="Use a random class-balanced subset of this many training reviews.")]
TestSize = Annotated[Optional[int], typer.Option(help="Use a random class-balanced subset of this many test reviews.")]
Precision = Annotated[str, typer.Option(help="float32 (exact) or bfloat16 (faster on recent CPUs, probabilities within ~1e-3).")]
TrainPrecision = Annotated[str, typer.Option("--precision", help="float32, or bfloat16: forward passes under autocast, weights float32 (faster on AMX CPUs and GPUs; results differ slightly).")]
Onnx = Annotated[bool, typer.Option("--onnx", help="Run RUN/model.onnx on ONNX Runtime (write it with `seqlab export`).")]
Data = Annotated[str, typer.Option(help="'imdb', a CSV/TSV/JSONL/Parquet or fastText (__label__, .ft/.txt) file, or a folder with a subfolder of .txt files per class.")]
DataFormat = Annotated[Optional[str], typer.Option("--format", help="Format of the --data/--test-data files: csv, tsv, jsonl, parquet or fasttext (default: told by the name and a .txt's content).")]
TestData = Annotated[Optional[str], typer.Option(help="A separate test set like --data; without it a stratified share of --data is held out.")]
TextColumn = Annotated[str, typer.Option(help="Column (JSON key) holding the texts.")]
LabelColumn = Annotated[str, typer.Option(help="Column (JSON key) holding the labels: class names or whole numbers.")]
ReplaceInvalid = Annotated[bool, typer.Option(help="Read bytes that are not UTF-8 as U+FFFD instead of stopping with an error.")]
TestSplit = Annotated[float, typer.Option(help="Share of each class of --data held out for testing when there is no --test-data.")]
Tensorboard = Annotated[Optional[str], typer.Option(help="Write TensorBoard scalars (loss, accuracy, learning rate per batch and epoch) to DIR/MODEL (needs seqlab[tensorboard]).")]
Resume = Annotated[Optional[Path], typer.Option(help="Continue the interrupted run at this directory from its latest checkpoint, exactly.")]
CheckpointEvery = Annotated[int, typer.Option(help="Also checkpoint every this many batches (0: at the end of each epoch only).")]
ResumeComparison = Annotated[bool, typer.Option("--resume", help="Continue the interrupted comparison in --out: finished models are kept, the one in progress continues from its checkpoint (same command, plus --resume).")]


@dataclass(frozen=True)
class RunOptions:
    """What `seqlab train` and `seqlab compare` both take, as the configs it makes."""

    model_options: dict  # the model options the user set; unset ones (None) leave each model's own default
    training: TrainConfig
    encoder: EncoderConfig
    data: DataSource
    archive: Optional[Path]  # a local copy of the IMDb archive, if given
    embeddings: Optional[str]  # pretrained vectors: "word2vec" or a file
    train_size: Optional[int]  # class-balanced subsets, if asked for
    test_size: Optional[int]


def takes_options(group: Callable, name: str) -> Callable[[Callable], Callable]:
    """A decorator: the command's parameter `name` becomes the options of `group` on its command line
    (in its place), and the command gets what `group` returns from them; each option is declared
    once for every command that shares the group. Parameters become keyword-only (typer passes
    them by name), so a group may stand between options with defaults."""
    shared = inspect.signature(group).parameters

    def decorate(command: Callable) -> Callable:
        own = inspect.signature(command, eval_str=True)
        parameters = [p.replace(kind=inspect.Parameter.KEYWORD_ONLY)
                      for own_parameter in own.parameters.values()
                      for p in (shared.values() if own_parameter.name == name else [own_parameter])]

        @functools.wraps(command)
        def with_options(**arguments):
            return command(**{key: value for key, value in arguments.items() if key not in shared},
                           **{name: group(**{key: arguments[key] for key in shared})})

        with_options.__signature__ = own.replace(parameters=parameters)  # type: ignore[attr-defined]  # typeshed's functools wrapper omits it; inspect reads it
        with_options.__annotations__ = {p.name: p.annotation for p in parameters}
        return with_options

    return decorate


def field_comments(config_class: type) -> dict[str, str]:
    """Each field's trailing comment in the source of `config_class`: `name: type = default  # comment`."""
    source = inspect.getsource(config_class)
    names = {f.name for f in fields(config_class)}
    comments: dict[str, str] = {}
    first_on_line: dict[int, str] = {}
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type == tokenize.NAME:
            first_on_line.setdefault(token.start[0], token.string)
        elif token.type == tokenize.COMMENT and first_on_line.get(token.start[0]) in names:
            comments[first_on_line[token.start[0]]] = token.string.lstrip("#").strip()
    return comments


def _sentence(comment: str) -> str:
    return comment[:1].upper() + comment[1:] + "." if comment else ""


def config_options(config_class: type) -> Callable[..., Any]:
    """A group for `takes_options`: every field of the dataclass `config_class` an option, with its
    default and its comment as help (tests check that every field has one), made into a
    `config_class` (whose checks then apply)."""
    comments = field_comments(config_class)
    hints = typing.get_type_hints(config_class)

    def option_type(hint: Any) -> Any:  # `X | None` as typer reads it
        if isinstance(hint, types.UnionType):
            return Optional[next(arg for arg in typing.get_args(hint) if arg is not type(None))]
        return hint

    parameters = [inspect.Parameter(f.name, inspect.Parameter.KEYWORD_ONLY, default=f.default,
                                    annotation=Annotated[option_type(hints[f.name]),
                                                         typer.Option(help=_sentence(comments.get(f.name, "")))])
                  for f in fields(config_class)]

    def group(**values: Any) -> Any:
        return config_class(**values)

    group.__signature__ = inspect.Signature(parameters)  # type: ignore[attr-defined]
    return group


def _architecture(
    embedding_dim: EmbeddingDim = None,
    hidden_size: HiddenSize = None,
    layers: Layers = None,
    pooling: Pooling = None,
    heads: Heads = None,
    ngrams: Ngrams = None,
    buckets: Buckets = None,
) -> dict:
    """The model's shape the user set, as build_model's keywords; unset ones (None) leave each model's own default."""
    return {"embedding_dim": embedding_dim, "hidden_size": hidden_size, "layers": layers, "pooling": pooling,
            "heads": heads, "ngrams": ngrams, "buckets": buckets}


takes_architecture = takes_options(_architecture, "architecture")


@takes_architecture
def _run_options(
    *,
    archive: Archive = None,
    epochs: Epochs = default(TrainConfig, "epochs"),
    batch_size: BatchSize = default(TrainConfig, "batch_size"),
    learning_rate: LearningRate = default(TrainConfig, "learning_rate"),
    optimizer: Optimizer = default(TrainConfig, "optimizer"),
    validation_split: ValidationSplit = default(TrainConfig, "validation_split"),
    seed: Seed = default(TrainConfig, "seed"),
    max_features: MaxFeatures = default(EncoderConfig, "max_features"),
    maxlen: Maxlen = default(EncoderConfig, "maxlen"),
    truncating: Truncating = default(EncoderConfig, "truncating"),
    padding: Padding = default(EncoderConfig, "padding"),
    architecture: dict,  # the model-shape options (_architecture)
    embedding_dropout: EmbeddingDropout = None,
    word_dropout: WordDropout = None,
    recurrent_dropout: RecurrentDropout = None,
    output_dropout: OutputDropout = None,
    embeddings: Embeddings = None,
    freeze_embeddings: FreezeEmbeddings = False,
    sparse_gradients: SparseGradients = False,
    binary: Binary = False,
    weight_decay: WeightDecay = default(TrainConfig, "weight_decay"),
    clip_norm: ClipNorm = None,
    schedule: Schedule = default(TrainConfig, "schedule"),
    warmup: Warmup = default(TrainConfig, "warmup"),
    discriminative: Discriminative = default(TrainConfig, "discriminative"),
    gradual_unfreezing: GradualUnfreezing = default(TrainConfig, "gradual_unfreezing"),
    patience: Patience = None,
    restore_best: RestoreBest = default(TrainConfig, "restore_best"),
    monitor: Monitor = default(TrainConfig, "monitor"),
    precision: TrainPrecision = default(TrainConfig, "precision"),
    train_size: TrainSize = None,
    test_size: TestSize = None,
    data: Data = default(DataSource, "data"),
    test_data: TestData = None,
    text_column: TextColumn = default(DataSource, "text_column"),
    label_column: LabelColumn = default(DataSource, "label_column"),
    replace_invalid: ReplaceInvalid = False,
    test_split: TestSplit = default(DataSource, "test_split"),
    format: DataFormat = None,
    tensorboard: Tensorboard = None,
) -> RunOptions:
    return RunOptions(
        model_options={**architecture, "embedding_dropout": embedding_dropout, "word_dropout": word_dropout,
                       "recurrent_dropout": recurrent_dropout, "output_dropout": output_dropout,
                       "freeze_embeddings": freeze_embeddings or None, "sparse_gradients": sparse_gradients or None,
                       "binary": binary or None},
        training=TrainConfig(epochs=epochs, batch_size=batch_size, learning_rate=learning_rate, optimizer=optimizer,
                             validation_split=validation_split, seed=seed, weight_decay=weight_decay,
                             clip_norm=clip_norm, schedule=schedule, patience=patience, restore_best=restore_best,
                             monitor=monitor, precision=precision, tensorboard=tensorboard, warmup=warmup,
                             discriminative=discriminative, gradual_unfreezing=gradual_unfreezing),
        encoder=encoder_config(max_features, maxlen, truncating, padding),
        data=data_source(data, test_data, text_column, label_column, replace_invalid, test_split, archive, format),
        archive=archive, embeddings=embeddings, train_size=train_size, test_size=test_size,
    )


takes_run_options = takes_options(_run_options, "run")  # `run: RunOptions`: what train and compare share


def encoder_config(max_features, maxlen, truncating, padding) -> EncoderConfig:
    return EncoderConfig(max_features=max_features, maxlen=maxlen, truncating=truncating, padding=padding)


def data_source(data, test_data, text_column, label_column, replace_invalid, test_split, archive,
                data_format=None) -> DataSource:
    return DataSource(data=data, test_data=test_data, text_column=text_column, label_column=label_column,
                      replace_invalid=replace_invalid, test_split=test_split, archive=str(archive) if archive else None,
                      format=data_format)
