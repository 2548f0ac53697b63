import numpy as np
import pytest
import torch

from seqlab.errors import ConfigError
from seqlab.models import build_model
from seqlab.models.embeddings import EmbeddingFileError, apply_embeddings, embedding_matrix, read_vectors
from seqlab.text.encoder import EncoderConfig, TextEncoder

WORDS = {"good": [0.5, 1.0, -1.0], "bad": [-0.5, -1.0, 1.0], "film": [0.0, 0.25, 2.0]}


@pytest.fixture(scope="module")
def encoder():
    texts = ["good film", "bad film", "good good plot", "Film unknownword"]
    return TextEncoder.fit(texts, EncoderConfig(max_features=20))


def _lines(words=WORDS):
    return [f"{word} " + " ".join(str(v) for v in vector) for word, vector in words.items()]


def test_glove_text_without_header(tmp_path):
    path = tmp_path / "glove.txt"
    path.write_text("\n".join(_lines()) + "\n")
    vectors = read_vectors(path)
    assert vectors.words == list(WORDS) and vectors.dimension == 3
    np.testing.assert_array_equal(vectors.vectors[2], np.float32(WORDS["film"]))


def test_vec_with_header(tmp_path):
    path = tmp_path / "fasttext.vec"
    path.write_text("3 3\n" + "\n".join(_lines()) + "\n")
    vectors = read_vectors(path)
    assert vectors.words == list(WORDS) and vectors.vectors.shape == (3, 3)


def test_word2vec_binary_written_by_gensim(tmp_path):
    from gensim.models import KeyedVectors

    keyed = KeyedVectors(3)
    keyed.add_vectors(list(WORDS), np.array(list(WORDS.values()), dtype=np.float32))
    path = tmp_path / "vectors.bin"
    keyed.save_word2vec_format(str(path), binary=True)
    vectors = read_vectors(path)
    assert vectors.words == list(WORDS)
    np.testing.assert_array_equal(vectors.vectors, np.array(list(WORDS.values()), dtype=np.float32))


@pytest.mark.parametrize("content,message", [
    ("good 1 2 3\nbad 1 2\nfilm 1 2 3\n", "line 2: the vector for 'bad' has 2 numbers, expected 3"),
    ("good 1 2 3\nbad 1 x2 3\n", "line 2: 'x2' in the vector for 'bad' is not a number"),
    ("2 3\ngood 1 2 3\nbad 1 2 3 4\n", "line 3: the vector for 'bad' has 4 numbers, expected 3 (from the header)"),
    ("", "holds no word vectors"),
    ("5 3\ngood 1 2 3\n", "header promises 5 vectors but the file has 1"),
    ("good\n", "line 1: expected a word then numbers"),
])
def test_malformed_text_files_name_the_problem_and_line(tmp_path, content, message):
    path = tmp_path / "broken.txt"
    path.write_text(content)
    with pytest.raises(EmbeddingFileError) as error:
        read_vectors(path)
    assert message in str(error.value) and str(path) in str(error.value)


def test_damaged_binary_and_missing_files(tmp_path):
    path = tmp_path / "damaged.bin"
    path.write_bytes(b"3 3\ngood \x00\x01")
    with pytest.raises(EmbeddingFileError, match="not a readable word2vec binary"):
        read_vectors(path)
    with pytest.raises(EmbeddingFileError, match="no word-vector file"):
        read_vectors(tmp_path / "absent.txt")
    (tmp_path / "empty.bin").write_bytes(b"")
    with pytest.raises(EmbeddingFileError, match="empty"):
        read_vectors(tmp_path / "empty.bin")


def test_matrix_coverage_and_loading_into_a_model(tmp_path, encoder):
    path = tmp_path / "glove.txt"
    path.write_text("\n".join(_lines({**WORDS, "Plot": [9.0, 9.0, 9.0]})) + "\n")  # case folded on lookup
    matrix = embedding_matrix(read_vectors(path), encoder)
    vocab = encoder.tokenizer.get_vocab()
    assert matrix.found.sum() == 4 and matrix.coverage == pytest.approx(4 / (encoder.vocab_size - 3))
    assert "4 of" in matrix.describe()
    torch.manual_seed(0)
    model = build_model("lstm", vocab_size=encoder.vocab_size, embedding_dim=3, hidden_size=4, freeze_embeddings=True)
    before = model.embedding.weight.detach().clone()
    apply_embeddings(model, matrix)
    weight = model.embedding.weight.detach()
    torch.testing.assert_close(weight[vocab["film"]], torch.tensor(WORDS["film"]))
    torch.testing.assert_close(weight[vocab["plot"]], torch.tensor([9.0, 9.0, 9.0]))
    torch.testing.assert_close(weight[vocab["unknownword"]], before[vocab["unknownword"]])  # not found: kept
    assert not model.embedding.weight.requires_grad  # frozen


def test_trained_embeddings_take_the_initial_spread_and_keep_their_directions(tmp_path, encoder):
    path = tmp_path / "glove.txt"
    path.write_text("\n".join(_lines()) + "\n")
    matrix = embedding_matrix(read_vectors(path), encoder)
    torch.manual_seed(0)
    model = build_model("lstm", vocab_size=encoder.vocab_size, embedding_dim=3, hidden_size=4)
    spread = float(model.embedding.weight.detach().std())
    apply_embeddings(model, matrix)
    weight = model.embedding.weight.detach()
    found = weight[matrix.found]
    scale = float(found.norm() / matrix.weights[matrix.found].norm())
    assert scale < 0.1  # the file's vectors are ~1; the initial ones ~0.03
    torch.testing.assert_close(found, matrix.weights[matrix.found] * scale)  # one factor: directions kept
    assert float(found.std()) == pytest.approx(spread, rel=1e-4)


def test_dimension_mismatch_says_how_to_fix(tmp_path, encoder):
    path = tmp_path / "glove.txt"
    path.write_text("\n".join(_lines()) + "\n")
    model = build_model("gru", vocab_size=encoder.vocab_size, embedding_dim=8, hidden_size=4)
    with pytest.raises(ConfigError, match="have 3 dimensions but the model's embedding_dim is 8; pass --embedding-dim 3"):
        apply_embeddings(model, embedding_matrix(read_vectors(path), encoder))


def test_frozen_embeddings_do_not_train(synthetic):
    from seqlab.training.fit import Trainer, TrainConfig

    torch.manual_seed(0)
    model = build_model("transformer", vocab_size=synthetic.encoder.vocab_size, embedding_dim=16, heads=2,
                        layers=1, hidden_size=16, freeze_embeddings=True)
    before = model.embedding.weight.detach().clone()
    Trainer(model, synthetic.train.take(np.arange(128)), None, TrainConfig(epochs=1, batch_size=64)).fit()
    assert torch.equal(model.embedding.weight.detach(), before)
