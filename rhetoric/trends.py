"""Trend estimates: per period (and outlet) and frame, how much of the reporting carries the frame.

The estimator is adjusted classify-and-count. A classifier with true-positive rate tpr and
false-positive rate fpr labels a share q = p * tpr + (1 - p) * fpr of sentences when the
true prevalence is p, so p = (q - fpr) / (tpr - fpr), clipped to [0, 1]. The rates are the
champion's cross-validated ones; unlike calibrated probabilities they do not drift towards
the training prevalence when a frame is rarer or commoner in the news than in labels/.

The 90% band is a percentile bootstrap over articles (sentences of one article are not
independent), vectorised with Poisson(1) article weights. When the model metadata gives the
number of cross-validation positives and negatives behind each rate, every replicate also
redraws tpr and fpr from their Beta posteriors, so the band carries the rates' uncertainty
too. A group with fewer than SMALL_GROUP_ARTICLES articles gets the wider of that band and an
exact (Clopper-Pearson) binomial interval, because a bootstrap of a handful of articles is
too narrow.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from rhetoric import parallel
from rhetoric.errors import ConfigError, ModelError

FREQ_NAMES = {"W": "week", "M": "month", "Q": "quarter", "Y": "year"}
CONFIDENCE = 0.90
BOOTSTRAP_REPS = 400
SMALL_GROUP_ARTICLES = 20
MIN_SEPARATION = 0.05  # below this tpr - fpr the correction explodes; the share stays unadjusted
ESTIMATE_COLUMNS = ["frame", "articles", "sentences", "count", "share",
                    "adjusted_share", "share_low", "share_high"]
_CHUNK_CELLS = 4_000_000  # Poisson weights drawn per chunk (replicates x articles)


def choose_freq(first: date, last: date) -> str:
    """The period length for a span of dates: W up to 26 weeks, M up to 3 years, Q up to 10, else Y."""
    days = (pd.Timestamp(last) - pd.Timestamp(first)).days
    if days <= 26 * 7:
        return "W"
    if days <= 3 * 366:
        return "M"
    if days <= 10 * 366:
        return "Q"
    return "Y"


def check_freq(freq: str) -> str:
    """Return freq upper-cased, or raise ConfigError naming the accepted values."""
    if str(freq).upper() not in FREQ_NAMES:
        raise ConfigError(f"--freq: expected one of {', '.join(FREQ_NAMES)}, found {freq!r}")
    return str(freq).upper()


def period_starts(published: pd.Series, freq: str) -> pd.Series:
    """The first day of each date's period (weeks start on Monday)."""
    freq = check_freq(freq)
    days = pd.to_datetime(published).dt.normalize()
    if freq == "W":
        return days - pd.to_timedelta(days.dt.day_of_week, unit="D")
    return days.dt.to_period(freq).dt.start_time


def adjust_share(share, tpr, fpr) -> np.ndarray:
    """Adjusted classify-and-count: (share - fpr) / (tpr - fpr), clipped to [0, 1]."""
    share, tpr, fpr = np.asarray(share, float), np.asarray(tpr, float), np.asarray(fpr, float)
    separation = tpr - fpr
    usable = separation >= MIN_SEPARATION
    with np.errstate(invalid="ignore", divide="ignore"):
        adjusted = np.where(usable, (share - fpr) / np.where(usable, separation, 1.0), share)
    return np.clip(adjusted, 0.0, 1.0)


def exact_band(count, sentences, confidence: float = CONFIDENCE) -> tuple[np.ndarray, np.ndarray]:
    """Clopper-Pearson interval for count labelled out of sentences.

    The beta quantiles come from scipy.special.betaincinv, which is what scipy.stats.beta.ppf
    computes (the same numbers to the bit, checked on 40,000 intervals with SciPy 1.17), without
    importing scipy.stats: that import alone takes 0.4-0.6 s of every run that redraws the dashboard.
    """
    from scipy.special import betaincinv  # imported on use

    count, sentences = np.asarray(count, float), np.asarray(sentences, float)
    tail = (1 - confidence) / 2
    with np.errstate(invalid="ignore", divide="ignore"):
        low = betaincinv(np.maximum(count, 1), np.maximum(sentences - count + 1, 1), tail)
        high = betaincinv(count + 1, np.maximum(sentences - count, 1), 1 - tail)
    low = np.where(count > 0, low, 0.0)
    high = np.where(count < sentences, high, 1.0)
    empty = sentences <= 0
    return np.where(empty, np.nan, low), np.where(empty, np.nan, high)


def rate_arrays(rates: Mapping | None, frames: Sequence[str]) -> dict[str, np.ndarray]:
    """tpr, fpr, positives, negatives per frame; a frame without rates gets tpr=1, fpr=0 (no adjustment)."""
    out = {"tpr": np.ones(len(frames)), "fpr": np.zeros(len(frames)),
           "positives": np.zeros(len(frames)), "negatives": np.zeros(len(frames))}
    for i, frame in enumerate(frames):
        entry = (rates or {}).get(frame)
        if not entry:
            continue
        try:
            tpr, fpr = float(entry["tpr"]), float(entry["fpr"])
        except (KeyError, TypeError, ValueError):
            raise ModelError(f"model metadata rates[{frame!r}]: expected numbers 'tpr' and 'fpr', "
                             f"found {entry!r}; re-evaluate the champion to record its rates") from None
        if not (0 <= fpr <= 1 and 0 <= tpr <= 1):
            raise ModelError(f"model metadata rates[{frame!r}]: expected tpr and fpr between 0 and 1, "
                             f"found tpr={tpr}, fpr={fpr}; re-evaluate the champion")
        out["tpr"][i], out["fpr"][i] = tpr, fpr
        out["positives"][i] = float(entry.get("positives") or 0)
        out["negatives"][i] = float(entry.get("negatives") or 0)
    return out


def article_table(totals: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    """One row per article (published, outlet, sentences) with one count column per frame."""
    frames = sorted(totals["frame"].unique())
    counts = totals.groupby(["article_id", "frame"])["count"].sum().unstack(fill_value=0)
    meta = totals.drop_duplicates("article_id").set_index("article_id")[["published", "outlet", "sentences"]]
    table = meta.join(counts.reindex(columns=frames, fill_value=0)).reset_index()
    return table, frames


def estimate_shares(articles: pd.DataFrame, frames: Sequence[str], group_cols: Sequence[str],
                    rates: Mapping | None, seed: int = 0, reps: int = BOOTSTRAP_REPS) -> pd.DataFrame:
    """Estimates per group of articles and frame: the group columns, then ESTIMATE_COLUMNS.

    articles has the group columns, 'sentences' and one count column per frame (article_table).
    """
    group_cols = list(group_cols)
    if articles.empty or not frames:
        return pd.DataFrame(columns=group_cols + ESTIMATE_COLUMNS)
    ordered = articles.sort_values(group_cols, kind="stable").reset_index(drop=True)
    starts = np.flatnonzero(~ordered.duplicated(subset=group_cols).to_numpy())
    sentences = ordered["sentences"].to_numpy(float)
    counts = ordered[list(frames)].to_numpy(float)
    total_sentences = np.add.reduceat(sentences, starts)
    total_counts = np.add.reduceat(counts, starts, axis=0)
    n_articles = np.diff(np.append(starts, len(ordered)))
    with np.errstate(invalid="ignore", divide="ignore"):
        share = total_counts / total_sentences[:, None]
    r = rate_arrays(rates, frames)
    adjusted = adjust_share(share, r["tpr"], r["fpr"])
    low, high = bootstrap_band(sentences, counts, starts, r, adjusted, reps, seed)
    exact_low, exact_high = exact_band(total_counts, total_sentences[:, None])
    small = (n_articles < SMALL_GROUP_ARTICLES)[:, None]
    low = np.where(small, np.fmin(low, adjust_share(exact_low, r["tpr"], r["fpr"])), low)
    high = np.where(small, np.fmax(high, adjust_share(exact_high, r["tpr"], r["fpr"])), high)
    low, high = np.fmin(low, adjusted), np.fmax(high, adjusted)

    keys = ordered.loc[starts, group_cols].reset_index(drop=True)
    n_groups, n_frames = len(starts), len(frames)
    table = keys.loc[np.repeat(np.arange(n_groups), n_frames)].reset_index(drop=True)
    table["frame"] = np.tile(np.asarray(frames, dtype=object), n_groups)
    table["articles"] = np.repeat(n_articles, n_frames)
    table["sentences"] = np.repeat(total_sentences, n_frames).astype("int64")
    table["count"] = total_counts.ravel().astype("int64")
    for name, values in (("share", share), ("adjusted_share", adjusted),
                         ("share_low", low), ("share_high", high)):
        table[name] = np.round(values.ravel(), 6)
    return table


def bootstrap_band(sentences: np.ndarray, counts: np.ndarray, starts: np.ndarray, rates: dict,
                   point: np.ndarray, reps: int = BOOTSTRAP_REPS, seed: int = 0,
                   confidence: float = CONFIDENCE) -> tuple[np.ndarray, np.ndarray]:
    """Percentile band of the adjusted share per group (rows) and frame (columns).

    Articles are sorted by group and starts holds each group's first row. Each replicate
    weighs every article by a Poisson(1) draw and, where counts of CV examples are known,
    redraws the rates from their Beta posteriors.
    """
    rng = np.random.default_rng(seed)
    n_articles, n_frames = counts.shape
    tpr, fpr = _rate_draws(rng, rates, reps)
    replicates = np.empty((reps, len(starts), n_frames), dtype=np.float32)
    chunk = max(1, min(reps, _CHUNK_CELLS // max(n_articles, 1)))
    for first in range(0, reps, chunk):
        size = min(chunk, reps - first)
        weights = poisson_one(rng, (size, n_articles))
        weighted_sentences = np.add.reduceat(weights * sentences.astype(np.float32), starts, axis=1)
        for j in range(n_frames):
            weighted_count = np.add.reduceat(weights * counts[:, j].astype(np.float32), starts, axis=1)
            with np.errstate(invalid="ignore", divide="ignore"):
                share = weighted_count / weighted_sentences
            rows = slice(first, first + size)
            replicates[rows, :, j] = adjust_share(share, tpr[rows, j, None], fpr[rows, j, None])
    # A replicate that drew no article of a group has no share; it counts as the point estimate.
    replicates = np.where(np.isnan(replicates), point[None].astype(np.float32), replicates)
    tail = (1 - confidence) / 2
    low, high = np.quantile(replicates, [tail, 1 - tail], axis=0)
    return low.astype(float), high.astype(float)


# P(X <= k) for X ~ Poisson(1), k = 0..12, in float32: past 12 the float32 sum is 1 (the tail's mass is below 1e-9)
_POISSON_ONE_CDF = np.cumsum([np.exp(-1.0) / np.prod(np.arange(1, k + 1, dtype=float)) for k in range(13)]
                             ).astype(np.float32)


def poisson_one(rng: np.random.Generator, shape: tuple[int, int]) -> np.ndarray:
    """Poisson(1) draws as float32 weights, by inverting the distribution function at float32 uniform draws.

    numpy's Poisson sampler took 0.11-0.18 s for the 4,000,000 weights of a 10,000-article
    corpus, a third of drawing the dashboard's bands; this takes 0.055-0.065 s. Float32 uniforms
    resolve probabilities down to 6e-8: a weight of 10 or more (probability 1.1e-7) is
    drawn as at most 10, which no band can show.
    """
    return np.searchsorted(_POISSON_ONE_CDF, rng.random(shape, dtype=np.float32), side="right").astype(np.float32)


def _rate_draws(rng: np.random.Generator, rates: dict, reps: int) -> tuple[np.ndarray, np.ndarray]:
    tpr = np.tile(rates["tpr"], (reps, 1))
    fpr = np.tile(rates["fpr"], (reps, 1))
    for j, (pos, neg) in enumerate(zip(rates["positives"], rates["negatives"])):
        if pos > 0:
            tpr[:, j] = rng.beta(rates["tpr"][j] * pos + 0.5, (1 - rates["tpr"][j]) * pos + 0.5, reps)
        if neg > 0:
            fpr[:, j] = rng.beta(rates["fpr"][j] * neg + 0.5, (1 - rates["fpr"][j]) * neg + 0.5, reps)
    return tpr, fpr


def trends_table(totals: pd.DataFrame, rates: dict | None, freq: str | None = None,
                 by_outlet: bool = False, seed: int = 0, rates_from: Mapping[str, str] | None = None) -> pd.DataFrame:
    """The `export trends` table: one row per period x frame (x outlet), period as YYYY-MM-DD.

    totals is Store.article_frame_totals(); articles without a date are left out. The last
    column, rates_from, says where each frame's correction rates come from (audit, eval, cv),
    or "none" when there were no rates and the share is not adjusted.
    """
    group_cols = ["period"] + (["outlet"] if by_outlet else [])
    columns = group_cols + ESTIMATE_COLUMNS + ["rates_from"]
    if totals.empty:
        return pd.DataFrame(columns=columns)
    articles, frames = article_table(totals)
    dated = articles[articles["published"].notna()]
    if dated.empty:
        return pd.DataFrame(columns=columns)
    freq = check_freq(freq) if freq else choose_freq(dated["published"].min(), dated["published"].max())
    dated = dated.assign(period=period_starts(dated["published"], freq))
    table = estimate_shares(dated, frames, group_cols, rates, seed=seed)
    table["period"] = pd.to_datetime(table["period"]).dt.strftime("%Y-%m-%d")
    table["rates_from"] = table["frame"].map(lambda f: (rates_from or {}).get(f) or ("cv" if (rates or {}).get(f) else "none"))
    return table[columns]


OUTLETS_CHARTED = 8


def outlet_trends(totals: pd.DataFrame, rates: dict | None, freq: str, groups: Sequence[tuple[str, Sequence[str]]] = (),
                  top: int = OUTLETS_CHARTED, seed: int = 0) -> dict[str, pd.DataFrame]:
    """Trends of single outlets (the `top` by volume) and of outlet groups, for the dashboard's outlet selector.

    Returns {choice: trends_table-shaped rows}; a group's key is its name followed by " (group)".
    """
    if totals.empty:
        return {}
    articles, frames = article_table(totals)
    dated = articles[articles["published"].notna()]
    if dated.empty:
        return {}
    dated = dated.assign(period=period_starts(dated["published"], check_freq(freq)))
    volume = dated.groupby("outlet")["sentences"].sum().sort_values(ascending=False, kind="stable")
    subsets = {outlet: dated[dated["outlet"] == outlet] for outlet in volume.index[:top]}
    for name, members in groups:
        chosen = dated[dated["outlet"].isin(list(members))]
        if len(chosen):
            subsets[f"{name} (group)"] = chosen
    out = {}
    for choice, subset in subsets.items():
        table = estimate_shares(subset, frames, ["period"], rates, seed=seed)
        table["period"] = pd.to_datetime(table["period"]).dt.strftime("%Y-%m-%d")
        out[choice] = table
    return out


def outlet_shares(totals: pd.DataFrame, rates: dict | None, seed: int = 0) -> pd.DataFrame:
    """Per outlet and frame over the whole corpus (dated or not): outlet, then ESTIMATE_COLUMNS."""
    if totals.empty:
        return pd.DataFrame(columns=["outlet"] + ESTIMATE_COLUMNS)
    articles, frames = article_table(totals)
    return estimate_shares(articles, frames, ["outlet"], rates, seed=seed)


# -- the dashboard's data ------------------------------------------------------------

DRILL_PER_PERIOD = 25  # drill-down sentences kept per frame and period
DRILL_TOP = 200  # ... plus the frame's overall highest-scoring ones
DRILL_FETCH_MAX = 5000


@dataclass(frozen=True)
class DashboardData:
    """Everything the dashboard shows, already aggregated; charts.page draws it."""

    summary: dict  # Store.corpus_summary()
    frame_titles: dict[str, str]  # frame name -> words, in display (and palette) order
    freq: str
    trends: pd.DataFrame  # trends_table()
    outlets: pd.DataFrame  # outlet_shares()
    cooccurrence: pd.DataFrame  # frame_a, frame_b, count
    sentences: pd.DataFrame  # drill-down: frame, period, published, outlet, title, url, source, text, score
    model: dict = field(default_factory=dict)  # version, macro_f1, adjusted
    # frame -> the correction rates in use: tpr, fpr, positives, negatives, reviewed, from (audit/eval/cv)
    evidence: dict = field(default_factory=dict)
    # outlet or "<group> (group)" -> its own trends (outlet_trends), for the share chart's outlet selector
    outlet_trends: dict = field(default_factory=dict)
    model_changes: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(
        columns=["version", "promoted_at", "macro_f1"]))


def dashboard_data(store, frame_titles: dict[str, str], model_meta: dict | None,
                   history: list[dict], freq: str | None = None, evidence: dict | None = None,
                   outlet_groups: Sequence[tuple[str, Sequence[str]]] = ()) -> DashboardData:
    """Query the store once per aggregate and build the dashboard's data."""
    totals = store.article_frame_totals()
    freq = resolve_freq(totals, freq)
    rates, shown = correction_rates(model_meta, evidence)
    # the bootstrap bands, a third of this, on the run's idle helper while the store is queried here
    bands = parallel.aside(band_tables, band_job(totals, rates, freq, shown, outlet_groups))
    n_periods = max(1, period_starts(totals["published"].dropna(), freq).nunique()) if len(totals) else 1
    limit = min(DRILL_FETCH_MAX, max(DRILL_TOP, DRILL_PER_PERIOD * n_periods))
    frames = list(dict.fromkeys([*frame_titles, *sorted(totals["frame"].unique())]))
    top = {frame: store.top_sentences(frame, limit=limit) for frame in frames}
    summary, cooccurrence = store.corpus_summary(), store.cooccurrence()
    return build_dashboard_data(totals, summary, cooccurrence, top, frame_titles, model_meta, history, freq,
                                evidence, outlet_groups, bands=bands)


def correction_rates(model_meta: dict | None, evidence: dict | None) -> tuple[dict | None, dict]:
    """The rates the correction uses (evidence's, else the champion's cross-validated ones, else none) and the
    evidence shown for them (without evidence: the cross-validated rates, marked "cv")."""
    meta = model_meta or {}
    rates = evidence_rates(evidence) or meta.get("rates") or None
    shown = evidence or {f: {**r, "from": "cv", "reviewed": int((r.get("positives") or 0) + (r.get("negatives") or 0))}
                         for f, r in (meta.get("rates") or {}).items()}
    return rates, shown


def band_job(totals: pd.DataFrame, rates: dict | None, freq: str, shown: dict,
             outlet_groups: Sequence[tuple[str, Sequence[str]]]) -> tuple:
    """band_tables' argument: one picklable tuple, as a helper receives it (shown: correction_rates' evidence)."""
    return totals, rates, freq, {f: e["from"] for f, e in shown.items()}, tuple(outlet_groups)


def band_tables(job: tuple) -> tuple[pd.DataFrame, dict]:
    """trends_table and outlet_trends of (totals, rates, freq, rates_from, outlet_groups): the dashboard's
    bootstrap bands, run on a helper process when one is idle (rhetoric.parallel.aside)."""
    totals, rates, freq, rates_from, outlet_groups = job
    return (trends_table(totals, rates, freq, rates_from=rates_from),
            outlet_trends(totals, rates, freq, outlet_groups))


def evidence_rates(evidence: dict | None) -> dict | None:
    """The rates part of correction evidence, in the shape rate_arrays reads."""
    if not evidence:
        return None
    return {f: {k: e[k] for k in ("tpr", "fpr", "positives", "negatives")} for f, e in evidence.items()}


def resolve_freq(totals: pd.DataFrame, freq: str | None) -> str:
    """The given frequency, checked, or the one the span of dated articles calls for."""
    if freq:
        return check_freq(freq)
    dates = totals["published"].dropna() if len(totals) else pd.Series(dtype="datetime64[ns]")
    return choose_freq(dates.min(), dates.max()) if len(dates) else "M"


def build_dashboard_data(totals: pd.DataFrame, summary: dict, cooccurrence: pd.DataFrame,
                         top_sentences: Mapping[str, pd.DataFrame], frame_titles: dict[str, str],
                         model_meta: dict | None, history: list[dict],
                         freq: str | None = None, evidence: dict | None = None,
                         outlet_groups: Sequence[tuple[str, Sequence[str]]] = (),
                         bands=None) -> DashboardData:
    """DashboardData from what the store returns (no database access here).

    evidence (rhetoric.audit.correction_evidence) gives each frame's rates and their source;
    without it the champion's cross-validated rates are used. bands: band_tables' result for
    these arguments, or what will give it (result(): dashboard_data has a helper compute it,
    and it is asked for last); None: computed here.
    """
    freq = resolve_freq(totals, freq)
    meta = model_meta or {}
    rates, evidence = correction_rates(model_meta, evidence)
    titles = dict(frame_titles)
    for frame in sorted(set(totals["frame"]) if len(totals) else ()):
        titles.setdefault(frame, frame.replace("_", " ").capitalize())
    macro_f1 = ((meta.get("metrics") or {}).get("eval") or {}).get("macro_f1")
    changes = pd.DataFrame(history or [], columns=["version", "promoted_at", "macro_f1"])
    changes["promoted_at"] = pd.to_datetime(changes["promoted_at"], utc=True, format="ISO8601").dt.tz_localize(None)
    outlets, sentences = outlet_shares(totals, rates), drilldown_sentences(top_sentences, freq)
    if bands is None:
        bands = band_tables(band_job(totals, rates, freq, evidence, outlet_groups))
    trends, by_outlet = bands.result() if hasattr(bands, "result") else bands
    return DashboardData(
        summary=summary, frame_titles=titles, freq=freq,
        trends=trends,
        outlets=outlets,
        cooccurrence=cooccurrence,
        sentences=sentences,
        model={"version": meta.get("version"), "macro_f1": macro_f1, "adjusted": bool(rates),
               "languages": list(meta.get("languages") or ["en"]),
               "evaluated_on": "real text" if (meta.get("metrics") or {}).get("real") else "written text"},
        model_changes=changes.sort_values("promoted_at").reset_index(drop=True),
        evidence=evidence,
        outlet_trends=by_outlet,
    )


def drilldown_sentences(top_sentences: Mapping[str, pd.DataFrame], freq: str) -> pd.DataFrame:
    """Per frame, the DRILL_TOP best sentences plus the DRILL_PER_PERIOD best of every period."""
    columns = ["frame", "period", "published", "outlet", "title", "url", "source", "text", "score"]
    parts = [table.assign(frame=frame) for frame, table in top_sentences.items() if len(table)]
    if not parts:
        return pd.DataFrame(columns=columns)
    # scores equal to the sixth decimal keep the order Store.top_sentences gave them (by sentence id): the same
    # text scored in two batches can differ in the last bits, which must not decide which tied sentence is shown
    rows = pd.concat(parts, ignore_index=True)
    rows = (rows.assign(_rank=-rows["score"].round(6)).sort_values(["frame", "_rank"], kind="stable")
            .drop(columns="_rank"))
    published = pd.to_datetime(rows["published"])
    dated = published.notna()
    rows["period"] = ""
    rows.loc[dated, "period"] = period_starts(published[dated], freq).dt.strftime("%Y-%m-%d")
    rows["published"] = published.dt.strftime("%Y-%m-%d").fillna("")
    overall = rows.groupby("frame").cumcount()
    in_period = rows.groupby(["frame", "period"]).cumcount()
    keep = (overall < DRILL_TOP) | (in_period < DRILL_PER_PERIOD)
    return rows.loc[keep, columns].reset_index(drop=True)
