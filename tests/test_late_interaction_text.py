"""The sentences of notebook 07 come from the run's numbers: the shortfall evidence."""
from types import SimpleNamespace

import pandas as pd

from recsys_lab.experiments.late_interaction_text import shortfall_text


def _model(valid, epochs):
    h = pd.DataFrame({"epoch": range(1, len(valid) + 1), "loss": 1.0, "valid_ndcg@10": valid})
    return SimpleNamespace(history_=h, best_epoch_=int(h.epoch[h["valid_ndcg@10"].idxmax()]), epochs=epochs)


def _stages(cross_over_sasrec):
    rows = [("EASE", 0.10, 0.40, "cross-encoder", 0.15), ("EASE", 0.10, 0.40, "cached cross-encoder", 0.14),
            ("SASRec", 0.20, 0.55, "cross-encoder", cross_over_sasrec),
            ("SASRec", 0.20, 0.55, "cached cross-encoder", cross_over_sasrec - 0.01)]
    return pd.DataFrame(rows, columns=["first_stage", "first_stage_ndcg@10", "first_stage_recall@100",
                                       "ranker", "ndcg@10 C=100"])


def test_a_capped_cross_encoder_below_sasrec_is_explained_by_its_numbers():
    h = {"cross_beats_sasrec": False, "cross_ndcg": 0.15, "cached_cross_ndcg": 0.14, "sasrec_ndcg": 0.20}
    models = {"SASRec": _model([0.1, 0.2, 0.19], 20), "cross-encoder": _model([0.1, 0.15, 0.17], 3)}
    text = shortfall_text(h, _stages(0.14), models)
    assert "stays below SASRec" in text and "0.1500" in text and "0.2000" in text
    assert "EASE 0.400, SASRec 0.550" in text                       # the candidates' ceiling
    assert "their scores are" in text                                # 0.14 < 0.20 inside SASRec's top-C
    assert "cross-encoder: 3 of 3 epochs, best 3, last validation change +0.0200 (epoch cap, still improving)" in text
    assert "SASRec: 3 of 20 epochs, best 2, last validation change -0.0100 (early stopping)" in text
    assert "under-trained" in text


def test_early_stopped_cross_encoders_are_not_called_under_trained():
    h = {"cross_beats_sasrec": False, "cross_ndcg": 0.15, "cached_cross_ndcg": 0.14, "sasrec_ndcg": 0.20}
    models = {"cross-encoder": _model([0.1, 0.17, 0.16], 10)}
    text = shortfall_text(h, _stages(0.21), models)
    assert "under-trained" not in text and "early stopping, not by the epoch cap" in text
    assert "match or pass it" in text


def test_a_cross_encoder_that_reaches_sasrec_needs_no_excuse():
    h = {"cross_beats_sasrec": True, "cross_ndcg": 0.21, "cached_cross_ndcg": 0.205, "sasrec_ndcg": 0.20}
    assert shortfall_text(h, _stages(0.22), {}).startswith("The cross-encoder reaches SASRec")
