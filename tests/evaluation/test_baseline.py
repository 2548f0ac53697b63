import numpy as np
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


def test_nb_ratios_match_a_hand_computation():
    import scipy.sparse

    from seqlab.evaluation.baseline import nb_ratios

    # 3 texts x 3 n-grams, binary; texts 0 and 1 positive
    features = scipy.sparse.csr_matrix(np.array([[1, 1, 0], [1, 0, 0], [0, 1, 1]], dtype=np.float64))
    ratio = nb_ratios(features, np.array([True, True, False]), alpha=1.0)
    # p = 1 + [2, 1, 0] = [3, 2, 1] (sum 6); q = 1 + [0, 1, 1] = [1, 2, 2] (sum 5)
    expected = np.log(np.array([3 / 6, 2 / 6, 1 / 6]) / np.array([1 / 5, 2 / 5, 2 / 5]))
    np.testing.assert_allclose(ratio, expected)


def test_nb_logreg_is_logistic_regression_on_ratio_scaled_binary_ngrams():
    from sklearn.linear_model import LogisticRegression

    from seqlab.evaluation.baseline import NaiveBayesConfig, naive_bayes_baselines

    train = ["good film", "good good acting", "bad film", "bad plot bad"]
    labels = np.array([1, 1, 0, 0])
    test = ["good plot", "bad acting", "film"]
    nblr, nbsvm = naive_bayes_baselines(train, labels, test, np.array([1, 0, 1]), NaiveBayesConfig())
    assert (nblr.name, nbsvm.name) == ("nb-logreg", "nbsvm")
    # by hand: vocabulary of 1-2-grams, binary counts, r = log ratio with alpha 1, LR (liblinear, C=1) on x * r
    vocabulary = sorted({g for t in train for w in [t.split()] for g in w + [" ".join(p) for p in zip(w, w[1:])]})
    def binary(text):
        w = text.split()
        grams = set(w + [" ".join(p) for p in zip(w, w[1:])])
        return np.array([1.0 if g in grams else 0.0 for g in vocabulary])
    x = np.stack([binary(t) for t in train])
    p, q = 1 + x[labels == 1].sum(0), 1 + x[labels == 0].sum(0)
    r = np.log((p / p.sum()) / (q / q.sum()))
    model = LogisticRegression(C=1.0, solver="liblinear").fit(x * r, labels)
    expected = model.predict(np.stack([binary(t) for t in test]) * r)
    assert nblr.test["accuracy"] == pytest.approx(float((expected == np.array([1, 0, 1])).mean()))
    assert nblr.parameters == len(vocabulary)
    assert nblr.test["accuracy"] >= 2 / 3 and nbsvm.test["accuracy"] >= 2 / 3


def test_naive_bayes_baselines_run_one_against_the_rest_for_several_classes():
    from seqlab.evaluation.baseline import naive_bayes_baselines

    train = ["red apple", "red cherry", "green leaf", "green grass", "blue sky", "blue sea"]
    labels = np.array([0, 0, 1, 1, 2, 2])
    results = naive_bayes_baselines(train, labels, ["red red", "green", "blue sky"], np.array([0, 1, 2]))
    assert all(result.test["accuracy"] == 1.0 for result in results)
