"""Estimators on synthetic data with a known truth, the export table, and the dashboard's data."""

from datetime import date

import numpy as np
import pandas as pd
import pytest

from rhetoric.errors import ConfigError, ModelError
from rhetoric.trends import (
    adjust_share, build_dashboard_data, choose_freq, dashboard_data, drilldown_sentences,
    article_table, estimate_shares, exact_band, period_starts, trends_table,
)

RATES = {"alpha": {"tpr": 0.75, "fpr": 0.04}, "beta": {"tpr": 0.85, "fpr": 0.02}}
EXPORT = ["period", "frame", "articles", "sentences", "count", "share", "adjusted_share",
          "share_low", "share_high", "rates_from"]


def simulate(truth: dict[str, np.ndarray], rates: dict, articles_per_period: int, seed: int,
             start: str = "2020-01-01", freq: str = "MS", outlets=("one", "two")) -> pd.DataFrame:
    """article_frame_totals rows from true prevalences per period and a classifier with these rates.

    Articles differ around the period's prevalence (Beta, so sentences cluster by article), and
    each true or false sentence is labelled with probability tpr or fpr. The extra column
    'positives' holds the truth: how many of the article's sentences really carry the frame.
    """
    rng = np.random.default_rng(seed)
    n_periods = len(next(iter(truth.values())))
    starts = pd.date_range(start, periods=n_periods, freq=freq)
    period = np.repeat(np.arange(n_periods), articles_per_period)
    n = len(period)
    published = starts[period] + pd.to_timedelta(rng.integers(0, 7, n), unit="D")
    sentences = rng.integers(5, 40, n)
    outlet = rng.choice(list(outlets), n)
    rows = []
    for frame, prevalence in truth.items():
        p = prevalence[period]
        article_p = rng.beta(p * 8 + 1e-3, (1 - p) * 8 + 1e-3)
        positives = rng.binomial(sentences, article_p)
        count = (rng.binomial(positives, rates[frame]["tpr"])
                 + rng.binomial(sentences - positives, rates[frame]["fpr"]))
        rows.append(pd.DataFrame({"article_id": np.arange(n), "published": published, "outlet": outlet,
                                  "frame": frame, "sentences": sentences, "count": count,
                                  "score_sum": count * 0.7, "positives": positives}))
    return pd.concat(rows, ignore_index=True)


@pytest.mark.parametrize("first, last, expected", [
    (date(2024, 1, 1), date(2024, 3, 1), "W"),
    (date(2024, 1, 1), date(2024, 6, 20), "W"),
    (date(2023, 1, 1), date(2024, 12, 31), "M"),
    (date(2018, 1, 1), date(2024, 12, 31), "Q"),
    (date(2005, 1, 1), date(2024, 12, 31), "Y"),
])
def test_choose_freq_follows_the_span(first, last, expected):
    assert choose_freq(first, last) == expected


@pytest.mark.parametrize("freq, day, expected", [
    ("W", "2024-05-16", "2024-05-13"),  # a Thursday -> its Monday
    ("W", "2024-05-13", "2024-05-13"),
    ("M", "2024-05-16", "2024-05-01"),
    ("Q", "2024-05-16", "2024-04-01"),
    ("Y", "2024-05-16", "2024-01-01"),
])
def test_period_starts_is_the_first_day(freq, day, expected):
    assert period_starts(pd.Series(pd.to_datetime([day])), freq).iloc[0] == pd.Timestamp(expected)


def test_unknown_freq_is_refused():
    with pytest.raises(ConfigError, match="expected one of W, M, Q, Y, found 'D'"):
        period_starts(pd.Series(pd.to_datetime(["2024-01-01"])), "D")


def test_adjust_share_inverts_the_error_rates_and_clips():
    true = np.array([0.0, 0.1, 0.5, 1.0])
    observed = true * 0.8 + (1 - true) * 0.05
    assert adjust_share(observed, 0.8, 0.05) == pytest.approx(true)
    assert adjust_share([0.01, 0.99], 0.8, 0.05) == pytest.approx([0.0, 1.0])
    assert adjust_share([0.3], 0.52, 0.5) == pytest.approx([0.3])  # rates too close: unadjusted


def test_exact_band_matches_clopper_pearson_at_the_edges():
    low, high = exact_band([0, 10], [10, 10])
    assert low[0] == 0 and high[0] == pytest.approx(1 - 0.05 ** (1 / 10))
    assert low[1] == pytest.approx(0.05 ** (1 / 10)) and high[1] == 1


def test_exact_band_is_the_beta_quantiles_of_scipy_stats():
    from scipy.stats import beta

    rng = np.random.default_rng(7)
    sentences = rng.integers(1, 100_000, 2_000).astype(float)
    count = np.floor(rng.random(2_000) * (sentences + 1))
    low, high = exact_band(count, sentences, 0.9)
    expected_low = np.where(count > 0, beta.ppf(0.05, np.maximum(count, 1), sentences - count + 1), 0.0)
    expected_high = np.where(count < sentences, beta.ppf(0.95, count + 1, np.maximum(sentences - count, 1)), 1.0)
    assert np.allclose(low, expected_low, rtol=1e-12, atol=0) and np.allclose(high, expected_high, rtol=1e-12, atol=0)
    assert np.isnan(exact_band([0], [0])[0]).all()


def true_shares(totals: pd.DataFrame, freq: str) -> pd.Series:
    """The share of sentences that really carry each frame, per (period, frame)."""
    period = period_starts(totals["published"], freq).dt.strftime("%Y-%m-%d")
    sums = totals.assign(period=period).groupby(["period", "frame"])[["positives", "sentences"]].sum()
    return sums["positives"] / sums["sentences"]


def test_adjusted_share_recovers_a_prevalence_the_raw_count_misses():
    truth = {"alpha": np.linspace(0.02, 0.2, 24), "beta": np.full(24, 0.05)}
    totals = simulate(truth, RATES, 150, seed=1)
    table = trends_table(totals, RATES, freq="M").set_index(["period", "frame"])
    real = true_shares(totals, "M").reindex(table.index)
    assert len(table) == 48
    adjusted_error = (table["adjusted_share"] - real).abs().mean()
    raw_error = (table["share"] - real).abs().mean()
    assert adjusted_error < 0.005
    assert raw_error > 0.01 and raw_error > 3 * adjusted_error
    covered = (table["share_low"] <= real) & (real <= table["share_high"])
    assert covered.mean() >= 0.9


def test_the_band_covers_the_truth_about_90_percent_of_the_time():
    periods = 300
    truth = {"alpha": np.random.default_rng(7).uniform(0.02, 0.3, periods)}
    rates = {"alpha": RATES["alpha"]}
    table = trends_table(simulate(truth, rates, 60, seed=2, freq="W-MON"), rates, freq="W")
    assert len(table) == periods
    covered = (table["share_low"] <= truth["alpha"]) & (truth["alpha"] <= table["share_high"])
    assert 0.85 <= covered.mean() <= 0.96
    assert ((table["share_low"] <= table["adjusted_share"])
            & (table["adjusted_share"] <= table["share_high"])).all()


def test_rate_uncertainty_keeps_the_band_honest_when_the_rates_are_estimates():
    """Reported rates come from a small cross-validation; with its counts the band still covers."""
    rng = np.random.default_rng(3)
    true_rates = {"alpha": {"tpr": 0.75, "fpr": 0.04}}
    hits = {True: 0, False: 0}
    draws = 120
    for draw in range(draws):
        positives, negatives = 80, 800
        reported = {"alpha": {"tpr": rng.binomial(positives, 0.75) / positives,
                              "fpr": rng.binomial(negatives, 0.04) / negatives,
                              "positives": positives, "negatives": negatives}}
        totals = simulate({"alpha": np.array([0.15])}, true_rates, 400, seed=100 + draw)
        for with_counts in (True, False):
            rates = reported if with_counts else {"alpha": {k: reported["alpha"][k] for k in ("tpr", "fpr")}}
            row = trends_table(totals, rates, freq="Y", seed=draw).iloc[0]
            hits[with_counts] += row["share_low"] <= 0.15 <= row["share_high"]
    assert hits[True] / draws >= 0.85
    assert hits[False] < hits[True]


def test_small_groups_get_at_least_the_exact_interval():
    totals = pd.DataFrame({"article_id": [1], "published": pd.to_datetime(["2024-02-03"]), "outlet": ["x"],
                           "frame": ["alpha"], "sentences": [10], "count": [0], "score_sum": [0.0]})
    row = trends_table(totals, None, freq="M").iloc[0]
    assert row["share_low"] == 0
    assert row["share_high"] == pytest.approx(1 - 0.05 ** (1 / 10), abs=1e-6)


def test_trends_table_counts_columns_and_undated_articles():
    totals = pd.DataFrame({
        "article_id": [1, 1, 2, 2, 3, 3],
        "published": pd.to_datetime(["2024-01-05", "2024-01-05", "2024-02-10", "2024-02-10", None, None]),
        "outlet": ["a", "a", "b", "b", "a", "a"],
        "frame": ["alpha", "beta"] * 3,
        "sentences": [10, 10, 30, 30, 99, 99],
        "count": [2, 0, 3, 6, 50, 50],
        "score_sum": [0.0] * 6,
    })
    table = trends_table(totals, None, freq="M")
    assert list(table.columns) == EXPORT
    assert table[["period", "frame", "articles", "sentences", "count"]].values.tolist() == [
        ["2024-01-01", "alpha", 1, 10, 2], ["2024-01-01", "beta", 1, 10, 0],
        ["2024-02-01", "alpha", 1, 30, 3], ["2024-02-01", "beta", 1, 30, 6]]
    assert table["share"].tolist() == pytest.approx([0.2, 0.0, 0.1, 0.2])
    assert table["adjusted_share"].tolist() == pytest.approx([0.2, 0.0, 0.1, 0.2])  # no rates: unadjusted
    by_outlet = trends_table(totals, None, freq="Y", by_outlet=True)
    assert list(by_outlet.columns) == ["period", "outlet"] + EXPORT[1:]
    assert by_outlet[["outlet", "frame", "count"]].values.tolist() == [
        ["a", "alpha", 2], ["a", "beta", 0], ["b", "alpha", 3], ["b", "beta", 6]]


def test_invalid_rates_are_refused_with_the_frame_named():
    totals = simulate({"alpha": np.array([0.1])}, RATES, 5, seed=0)
    with pytest.raises(ModelError, match=r"rates\['alpha'\]: expected tpr and fpr between 0 and 1"):
        trends_table(totals, {"alpha": {"tpr": 1.5, "fpr": 0.1}})


def test_estimate_shares_by_arbitrary_groups():
    articles = pd.DataFrame({"outlet": ["b", "a", "b"], "sentences": [10, 20, 30], "x": [1, 2, 3]})
    table = estimate_shares(articles, ["x"], ["outlet"], None)
    assert table[["outlet", "articles", "sentences", "count"]].values.tolist() == [["a", 1, 20, 2], ["b", 2, 40, 4]]


def test_drilldown_keeps_the_best_of_every_period():
    published = pd.to_datetime(["2024-01-03"] * 300 + ["2024-02-03"] * 5 + [None])
    top = pd.DataFrame({"published": published, "outlet": "o", "title": "t", "url": "", "source": "s",
                        "text": [f"s{i}" for i in range(306)], "score": np.linspace(1, 0, 306)})
    rows = drilldown_sentences({"alpha": top}, "M")
    assert (rows["period"] == "2024-01-01").sum() == 200  # the overall top 200 are all in January
    assert (rows["period"] == "2024-02-01").sum() == 5
    assert (rows["period"] == "").sum() == 1 and rows["published"].iloc[-1] == ""
    # scores apart only in the last bits (one text scored in two batches) keep the store's order, by sentence id
    tied = pd.DataFrame({"published": pd.to_datetime(["2024-01-03"] * 4), "outlet": "o", "title": "t", "url": "",
                         "source": "s", "text": ["a", "b", "c", "d"], "score": [0.9, 0.7 - 1e-15, 0.7 + 1e-15, 0.7]})
    assert drilldown_sentences({"alpha": tied}, "M")["text"].tolist() == ["a", "b", "c", "d"]


def test_build_dashboard_data_adds_titles_and_model_facts():
    totals = simulate({"alpha": np.array([0.1, 0.2])}, RATES, 30, seed=4)
    meta = {"version": "v3", "rates": {"alpha": RATES["alpha"]}, "metrics": {"eval": {"macro_f1": 0.77}}}
    history = [{"version": "v3", "promoted_at": "2020-01-20T08:00:00+00:00", "macro_f1": 0.77}]
    data = build_dashboard_data(totals, {}, pd.DataFrame(columns=["frame_a", "frame_b", "count"]), {},
                                {}, meta, history)
    assert data.frame_titles == {"alpha": "Alpha"}
    assert data.model == {"version": "v3", "macro_f1": 0.77, "adjusted": True, "languages": ["en"],
                          "evaluated_on": "written text"}
    assert data.model_changes["promoted_at"].iloc[0] == pd.Timestamp("2020-01-20 08:00")
    assert data.freq == "W" and set(data.outlets["outlet"]) == {"one", "two"}


def test_dashboard_data_reads_the_store(tmp_path):
    store_module = pytest.importorskip("rhetoric.store")
    store = store_module.Store(f"sqlite:///{tmp_path / 'r.db'}")
    store.create_schema()
    new = store_module.NewArticle
    store.add_articles([
        new("h1", ["Sanctions are illegal.", "Weather is fine.", "Talks must start."], "a.html",
            title="A", published=date(2024, 1, 10), outlet="Daily", url="https://example.org/a"),
        new("h2", ["Nothing here.", "Sanctions fail."], "b.html", title="B", published=date(2024, 3, 2),
            outlet="Weekly"),
        new("h3", ["Undated sanctions claim."], "c.html", title="C", outlet="Daily"),
    ], run_id="r1")
    ids = store.sentence_texts().sort_values("sentence_id")
    flags = [[1, 0], [0, 0], [0, 1], [0, 0], [1, 0], [1, 0]]
    scores = [[0.9, 0.1], [0.1, 0.1], [0.2, 0.8], [0.1, 0.1], [0.7, 0.2], [0.95, 0.1]]
    store.write_predictions(ids["sentence_id"].tolist(), ["anti_sanctions", "peace_talks"], flags, scores, "v1")
    data = dashboard_data(store, {"anti_sanctions": "Anti-sanctions", "peace_talks": "Peace talks"},
                          None, [], freq="M")
    sanctions = data.trends[data.trends["frame"] == "anti_sanctions"]
    assert sanctions[["period", "sentences", "count"]].values.tolist() == [
        ["2024-01-01", 3, 1], ["2024-03-01", 2, 1]]  # the undated article is left out
    drill = data.sentences[data.sentences["frame"] == "anti_sanctions"]
    assert drill["text"].tolist() == ["Undated sanctions claim.", "Sanctions are illegal.", "Sanctions fail."]
    assert drill["period"].tolist() == ["", "2024-01-01", "2024-03-01"]
    assert data.model["adjusted"] is False
    # the bootstrap bands drawn on a helper process (a run's, idle by then) are the ones drawn here
    from rhetoric import parallel

    meta = {"rates": {"anti_sanctions": RATES["alpha"], "peace_talks": RATES["alpha"]}}
    here = dashboard_data(store, {"anti_sanctions": "Anti-sanctions"}, meta, [], freq="M")
    parallel.start(1)
    try:
        helper = parallel._helpers[0]
        aside = parallel.aside
        sent = []
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(parallel, "aside", lambda f, a: sent.append(f) or aside(f, a))
            there = dashboard_data(store, {"anti_sanctions": "Anti-sanctions"}, meta, [], freq="M")
        assert sent and helper.alive()
    finally:
        parallel.shutdown()
    pd.testing.assert_frame_equal(here.trends, there.trends)
    assert here.outlet_trends.keys() == there.outlet_trends.keys()
    for name, table in here.outlet_trends.items():
        pd.testing.assert_frame_equal(table, there.outlet_trends[name])


def test_rates_from_says_where_each_frames_rates_come_from():
    totals = simulate({"alpha": np.array([0.1, 0.2]), "beta": np.array([0.05, 0.05])}, RATES, 30, seed=5)
    table = trends_table(totals, {"alpha": RATES["alpha"]}, "Y", rates_from={"alpha": "audit"})
    assert set(table.loc[table["frame"] == "alpha", "rates_from"]) == {"audit"}
    assert set(table.loc[table["frame"] == "beta", "rates_from"]) == {"none"}  # no rates: not adjusted
    plain = trends_table(totals, {"alpha": RATES["alpha"]}, "Y")
    assert set(plain.loc[plain["frame"] == "alpha", "rates_from"]) == {"cv"}


def test_dashboard_data_uses_the_evidence_rates_and_keeps_their_source():
    totals = simulate({"alpha": np.array([0.1, 0.2])}, RATES, 30, seed=6)
    evidence = {"alpha": {"tpr": 0.5, "fpr": 0.01, "positives": 40.0, "negatives": 400.0, "reviewed": 440,
                          "from": "eval"}}
    meta = {"version": "v3", "rates": {"alpha": RATES["alpha"]}, "metrics": {}}
    data = build_dashboard_data(totals, {}, pd.DataFrame(columns=["frame_a", "frame_b", "count"]), {}, {}, meta, [],
                                evidence=evidence)
    assert set(data.trends["rates_from"]) == {"eval"}
    assert data.evidence["alpha"]["from"] == "eval"
    cv = build_dashboard_data(totals, {}, pd.DataFrame(columns=["frame_a", "frame_b", "count"]), {}, {}, meta, [])
    assert not np.allclose(cv.trends["adjusted_share"], data.trends["adjusted_share"])
    assert set(cv.trends["rates_from"]) == {"cv"}


def test_a_small_audit_gives_wider_bands_than_a_large_one():
    totals = simulate({"alpha": np.array([0.05, 0.06, 0.07])}, RATES, 60, seed=8)
    articles, frames = article_table(totals)
    small = {"alpha": {"tpr": 0.75, "fpr": 0.04, "positives": 12, "negatives": 120}}
    large = {"alpha": {"tpr": 0.75, "fpr": 0.04, "positives": 120, "negatives": 1200}}
    width = {}
    for name, rates in (("small", small), ("large", large)):
        table = estimate_shares(articles.assign(group=1), frames, ["group"], rates, seed=1)
        width[name] = float((table["share_high"] - table["share_low"]).iloc[0])
    assert width["small"] > 1.3 * width["large"]


def test_poisson_weights_follow_poisson_one():
    """The bootstrap's weights: Poisson(1) frequencies within sampling error for 0-5, mean and variance 1, the same
    draws for the same seed."""
    import math

    from rhetoric.trends import poisson_one

    weights = poisson_one(np.random.default_rng(3), (200, 10_000))
    assert weights.dtype == np.float32 and weights.shape == (200, 10_000)
    for k in range(6):
        expected = math.exp(-1) / math.factorial(k)
        found = float(np.mean(weights == k))
        assert abs(found - expected) < 5 * math.sqrt(expected * (1 - expected) / weights.size), k
    assert abs(weights.mean() - 1) < 0.005 and abs(weights.var() - 1) < 0.01
    assert np.array_equal(weights, poisson_one(np.random.default_rng(3), (200, 10_000)))
