import pytest

from seqlab.evaluation.baseline import encoded_texts, tfidf_baseline


@pytest.mark.slow
def test_tfidf_baseline_on_real_reviews(imdb_corpus):
    sample = imdb_corpus.subset(6000, 2000, seed=0)
    result = tfidf_baseline(sample.train.texts, sample.train.labels, sample.test.texts, sample.test.labels)
    assert result.test["accuracy"] >= 0.84  # the classic method is strong even on 6,000 reviews
    assert 0.5 < result.test["roc_auc"] <= 1 and 0 < result.test["f1"] <= 1
    assert result.roc["fpr"][0] == 0 and result.roc["tpr"][-1] == 1
    assert result.parameters > 10_000


def test_baseline_reads_encoded_ids_when_texts_are_not_at_hand(synthetic):
    texts = encoded_texts(synthetic.test)
    assert len(texts) == len(synthetic.test)
    assert texts[0].split() == [str(i) for i in synthetic.test.encoded.sequence(0)]
    result = tfidf_baseline(encoded_texts(synthetic.train), synthetic.train.labels, texts, synthetic.test.labels)
    assert result.test["accuracy"] > 0.6
