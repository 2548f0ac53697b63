import gzip
import hashlib
import io
import tarfile
import urllib.error

import numpy as np
import pytest

from seqlab.data import imdb
from seqlab.errors import DataError


@pytest.mark.slow
def test_reads_all_labelled_reviews(imdb_corpus):
    assert len(imdb_corpus.train) == 25_000 and len(imdb_corpus.test) == 25_000
    assert imdb_corpus.label_names == ("negative", "positive")
    assert np.bincount(imdb_corpus.train.labels).tolist() == [12_500, 12_500]
    assert np.bincount(imdb_corpus.test.labels).tolist() == [12_500, 12_500]
    assert all(isinstance(text, str) and text for text in imdb_corpus.train.texts[:100])


@pytest.mark.slow
def test_reads_unlabelled_reviews_on_request(archive):
    corpus = imdb.read_archive(archive, unlabelled=True)
    assert len(corpus.unlabelled) == 50_000


@pytest.mark.slow
def test_subset_is_balanced_and_seeded(imdb_corpus):
    a = imdb_corpus.subset(1000, 100, seed=3)
    b = imdb_corpus.subset(1000, 100, seed=3)
    assert len(a.train) == 1000 and np.bincount(a.train.labels).tolist() == [500, 500]
    assert a.train.texts == b.train.texts


def test_missing_local_copy_names_the_path(tmp_path):
    with pytest.raises(DataError, match="not found at .*nowhere.tar.gz"):
        imdb.locate_archive(tmp_path / "nowhere.tar.gz")


def test_offline_without_copy_says_where_it_looked_and_how_to_fix(tmp_path, monkeypatch):
    monkeypatch.setenv("SEQLAB_CACHE", str(tmp_path))
    monkeypatch.delenv("SEQLAB_IMDB_ARCHIVE", raising=False)

    def offline(*args, **kwargs):
        raise urllib.error.URLError("network is unreachable")

    monkeypatch.setattr(imdb.urllib.request, "urlopen", offline)
    with pytest.raises(DataError) as error:
        imdb.locate_archive()
    message = str(error.value)
    assert str(tmp_path) in message and imdb.URL in message and "--archive" in message and "SEQLAB_IMDB_ARCHIVE" in message
    assert list(tmp_path.iterdir()) == []  # nothing half-downloaded left behind


def test_download_with_wrong_checksum_is_discarded(tmp_path):
    source = tmp_path / "served.tar.gz"
    source.write_bytes(b"not the archive")
    destination = tmp_path / "cache" / "aclImdb_v1.tar.gz"
    with pytest.raises(DataError, match="corrupt: sha256"):
        imdb.download_archive(destination, url=source.as_uri())
    assert not destination.exists()
    assert list(destination.parent.iterdir()) == []


def test_download_with_right_checksum_is_kept(tmp_path):
    source = tmp_path / "served.bin"
    source.write_bytes(b"payload")
    destination = tmp_path / "cache" / "archive.tar.gz"
    imdb.download_archive(destination, url=source.as_uri(), sha256=hashlib.sha256(b"payload").hexdigest())
    assert destination.read_bytes() == b"payload"


@pytest.mark.slow
def test_truncated_archive_is_reported(archive, tmp_path):
    broken = tmp_path / "truncated.tar.gz"
    with open(archive, "rb") as handle:
        broken.write_bytes(handle.read(3_000_000))
    with pytest.raises(DataError, match="truncated or corrupt"):
        imdb.read_archive(broken)


@pytest.mark.slow
def test_damaged_archive_is_reported(archive, tmp_path):
    damaged = tmp_path / "damaged.tar.gz"
    with open(archive, "rb") as handle:
        content = bytearray(handle.read(3_000_000))
    content[1_000_000:1_000_400] = b"\xff" * 400  # a deflate stream no inflater accepts
    damaged.write_bytes(bytes(content))
    with pytest.raises(DataError, match="truncated or corrupt"):
        imdb.read_archive(damaged)


def test_archive_without_reviews_is_reported(tmp_path):
    path = tmp_path / "other.tar.gz"
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        info = tarfile.TarInfo("readme.txt")
        info.size = 5
        tar.addfile(info, io.BytesIO(b"hello"))
    path.write_bytes(gzip.compress(buffer.getvalue()))
    with pytest.raises(DataError, match="holds no IMDb reviews"):
        imdb.read_archive(path)


@pytest.mark.slow
def test_fast_tar_reader_agrees_with_tarfile(archive):
    from seqlab.data import tarstream

    fast = dict(tarstream.iter_files(archive))
    with tarfile.open(archive, "r:gz") as reference:
        members = [m for m in reference.getmembers() if m.isfile()]
        assert sorted(fast) == sorted(m.name for m in members)
        for member in members[::997]:
            assert fast[member.name] == reference.extractfile(member).read()


def test_fast_tar_reader_handles_long_names_and_rejects_damage(tmp_path):
    from seqlab.data import tarstream

    buffer = io.BytesIO()
    long_name = "aclImdb/" + "x" * 150 + "/1_10.txt"
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.GNU_FORMAT) as tar:
        for name, payload in ((long_name, b"gnu"), ("short.txt", b"short")):
            info = tarfile.TarInfo(name)
            info.size = len(payload)
            tar.addfile(info, io.BytesIO(payload))
    good = tmp_path / "good.tar.gz"
    good.write_bytes(gzip.compress(buffer.getvalue()))
    assert dict(tarstream.iter_files(good)) == {long_name: b"gnu", "short.txt": b"short"}

    damaged = bytearray(buffer.getvalue())
    damaged[100] ^= 0xFF  # the first header's mode field
    bad = tmp_path / "bad.tar.gz"
    bad.write_bytes(gzip.compress(bytes(damaged)))
    with pytest.raises(tarstream.TarFormatError, match="checksum"):
        list(tarstream.iter_files(bad))
    damaged = bytearray(buffer.getvalue())
    damaged[124] = ord("z")  # not an octal digit in the first header's size field
    bad.write_bytes(gzip.compress(bytes(damaged)))
    with pytest.raises(tarstream.TarFormatError, match="octal number"):
        list(tarstream.iter_files(bad))
    assert dict(tarstream.iter_files(good, wanted=lambda name: name.endswith(".txt"))) == {long_name: b"gnu",
                                                                                          "short.txt": b"short"}
    assert list(tarstream.iter_files(good, wanted=lambda name: name.startswith("short"))) == [("short.txt", b"short")]
