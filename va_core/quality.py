"""How good a model version is on the corpus, estimated from labels with known sampling probabilities.

The feeds choose clips the model finds interesting, so AP measured on the labelled set says
little about the corpus (for a rare concept it is close to 1 whatever the model). What a
person needs is the model's quality on the clips nobody has labelled, which is where it will
be used. Some labels are a probability sample of those clips: the ``audit`` feed (stratified
over the model's scores) and the ``random`` feed (one stratum). Their events record the draw,
the stratum, its population N_h and the inclusion probability (``va_core.labels.PROVENANCE``).

Public API (pure functions on arrays, plus readers of label events):

- :func:`stratified_draw(scores, candidates, k, seed) -> Draw` -- the audit design: strata by
  score rank among the unlabelled clips (top 0.5%, 0.5-2%, 2-5%, 5-15%, 15-40%, 40-100%,
  with 8/15/20/22/20/15% of the draws: where a rare concept's positives are, without leaving
  the low strata nearly unsampled; Bennett & Carvalho 2010 stratify on the classifier's
  score for the same reason), every stratum sampled, draws in random order so that any
  prefix a person labels is still a stratified sample.
- :func:`make_sample` / :func:`sample_from_events` / :func:`label_sample` ->
  :class:`ProbabilitySample` -- labelled draws: clip keys, values, the (draw, stratum) cell
  of each and the number of population clips it stands for.
- :func:`estimate(sample, scores, threshold) -> QualityEstimate` -- AP, precision and recall
  at the threshold, and prevalence (the random baseline), each with a 90% interval;
  ``.method`` (:data:`METHOD`, :data:`PROVISIONAL`, :data:`NO_AUDIT`), ``.needed``,
  ``.describe()``, ``.as_dict()``.
- :func:`estimate_model(sample, matrix_of, model, training_keys, training_y, refit)` -- the
  same for a model version, its sampled training clips scored by cross-fitted refits
  (:func:`cross_fitted_scores`).
- :func:`paired_difference(sample, scores_a, scores_b) -> Difference` -- how much higher
  ``scores_b``'s AP is than ``scores_a``'s on the same labels, with a 90% interval: what a
  choice between two models needs (their difference, not two intervals).
- :func:`weighted_ap`, :func:`audit_labels_needed`, :func:`cross_inclusion`.

The estimator. Within one draw, a cell (stratum h) of N_h unlabelled clips of which m_h were
drawn and labelled gives each of them the weight N_h / m_h (Horvitz-Thompson with the
inclusion probability realised by the labels: a person who labels only part of a draw, in
its random order, still leaves a simple random sample within each stratum). Weighted counts
of positives and of all clips above every score estimate the population's counts, and AP,
precision and recall are ratios of them (ratio estimators: consistent, bias O(1/n)); at a
sampled positive its own weight is replaced by one clip (the precision at a clip is about
the clips above it plus itself, as infAP / xinfAP treat sampled judgements). Several draws
(one per model version, each over the clips unlabelled at its time, stratified by that
version's scores) combine into one sample through each clip's probability of being in any
of them (:func:`cross_inclusion`); without the scores that needs, they are pooled with
shares by number of labels. The interval is the hull of two: the BCa interval of a
smoothed stratified bootstrap (Rao and Wu's rescaled bootstrap within each cell: m - 1 of its
m labels drawn with replacement, counted m / (m - 1) times; cells and weights fixed; each resampled score drawn from a kernel around the observed one and kept
within the score range its stratum is estimated to span, a stratified jackknife for the
acceleration), and Korn and Graubard's score interval for a proportion from a complex
sample (Wilson's at the effective sample size the bootstrap variance implies). The
bootstrap alone held the truth in 0.82-0.91 of repeated audits and collapsed to [1, 1] when
every sampled positive ranked above every sampled negative; the hull holds it in 0.93-1.00,
also for audits in rounds of 25 over several versions (benchmarks/estimator_coverage.py).
When one heavy audit positive carries most of the positives' weight the score interval is
wide, at an effective sample size near one: honest for this estimator.

What is estimated is the AP over the clips that were unlabelled at the draws: the labelled
clips are left out on purpose (a model scores its own training clips too well, which is the
bias this module exists to remove), so this is the quality a served model has on new clips.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

__all__ = ["METHOD", "PROVISIONAL", "Difference", "QualityEstimate", "audit_labels_needed", "cross_fitted_scores",
           "estimate_model", "label_sample", "paired_difference", "simple_draw_design", "stratified_draw"]

LEVEL = 0.90
N_BOOT = 500
SEED = 0
JACKKNIFE_BLOCK = 256
SMOOTHING = 1.0  # times Silverman's bandwidth of the smoothed bootstrap (see _smoothing)
MIN_AUDIT = 40  # labelled draws before the estimate is more than provisional
MIN_AUDIT_POS = 5  # ... of which positives: AP rests on the positives
# The audit design: strata by score rank (top fraction of the unlabelled clips) and the share
# of the draws each gets.
STRATA = (0.005, 0.02, 0.05, 0.15, 0.40, 1.0)
ALLOCATION = (0.08, 0.15, 0.20, 0.22, 0.20, 0.15)
METHOD = "stratified_ht"  # enough audit labels
PROVISIONAL = "stratified_ht_provisional"  # an estimate, but on fewer labels than MIN_AUDIT / MIN_AUDIT_POS
NO_AUDIT = "no_audit_labels"  # no estimate: no labelled random draw, or no positive among them


# -- the design --------------------------------------------------------------------------

@dataclass(frozen=True)
class Draw:
    """A stratified random draw: row numbers in the order to show them, and the design of each."""

    rows: np.ndarray  # corpus row numbers, in display order
    stratum: np.ndarray  # stratum of each row
    stratum_size: np.ndarray  # N_h of each row's stratum
    inclusion_prob: np.ndarray  # n_h / N_h
    stratum_low: np.ndarray  # score bounds of each row's stratum
    stratum_high: np.ndarray


def allocate(sizes, k: int, shares=None) -> np.ndarray:
    """Draws per stratum: ``shares`` of ``k`` (default equal), at most N_h each, at least one per
    stratum while k allows, giving what a small stratum cannot take to the others."""
    sizes = np.asarray(sizes, dtype=np.int64)
    shares = np.ones(len(sizes)) if shares is None else np.asarray(shares, dtype=np.float64)
    k = int(min(k, sizes.sum()))
    n = np.zeros(len(sizes), dtype=np.int64)
    open_ = sizes > 0
    # one each first, top strata first: every stratum with clips gets sampled
    for h in np.flatnonzero(open_)[:k]:
        n[h] = 1
    while n.sum() < k:
        room = sizes - n
        share = np.where(room > 0, np.asarray(shares, dtype=np.float64), 0.0)
        want = share / share.sum() * (k - n.sum())
        add = np.minimum(np.floor(want).astype(np.int64), room)
        if add.sum() == 0:  # largest remainder gets one
            h = int(np.argmax(np.where(room > 0, want - np.floor(want) + share * 1e-9, -1.0)))
            add[h] = 1
        n += add
    return n


def stratified_draw(scores: np.ndarray, candidates: np.ndarray, k: int, seed: int,
                    strata=STRATA, shares=ALLOCATION) -> Draw:
    """Draw ``k`` of ``candidates`` (row numbers), stratified by rank of ``scores`` among them."""
    candidates = np.asarray(candidates, dtype=np.int64)
    s = np.asarray(scores, dtype=np.float64)[candidates]
    order = candidates[np.lexsort((candidates, -s))]  # best first; ties by row number
    n_all = len(order)
    ends = np.clip(np.ceil(np.asarray(strata, dtype=np.float64) * n_all).astype(np.int64), 0, n_all)
    ends[-1] = n_all
    # a stratum left empty by rounding (a small corpus) gives its share to the next one
    bounds, merged, carry = [], [], 0.0
    for lo, hi, share in zip(np.r_[0, ends[:-1]], ends, shares):
        carry += share
        if hi > lo:
            bounds.append((int(lo), int(hi)))
            merged.append(carry)
            carry = 0.0
    if carry and merged:
        merged[-1] += carry
    n = allocate([hi - lo for lo, hi in bounds], k, merged)
    rng = np.random.default_rng(seed)
    rows, stratum, size, prob, low, high = [], [], [], [], [], []
    for h, (lo, hi) in enumerate(bounds):
        members = order[lo:hi]
        if n[h] == 0:
            continue
        picked = rng.choice(members, size=int(n[h]), replace=False)
        ms = np.asarray(scores, dtype=np.float64)[members]
        rows.append(picked)
        stratum += [h] * len(picked)
        size += [len(members)] * len(picked)
        prob += [n[h] / len(members)] * len(picked)
        low += [float(ms.min())] * len(picked)
        high += [float(ms.max())] * len(picked)
    if not rows:
        empty = np.zeros(0)
        return Draw(empty.astype(np.int64), empty.astype(np.int64), empty.astype(np.int64), empty, empty, empty)
    show = rng.permutation(sum(len(r) for r in rows))
    arrays = [np.concatenate(rows), np.asarray(stratum), np.asarray(size), np.asarray(prob, dtype=np.float64),
              np.asarray(low), np.asarray(high)]
    return Draw(*(a[show] for a in arrays))


def simple_draw_design(n_drawn: int, n_candidates: int) -> dict:
    """The design of a uniform draw of ``n_drawn`` of ``n_candidates`` clips: one stratum."""
    return {"stratum": 0, "stratum_size": int(n_candidates),
            "inclusion_prob": float(n_drawn) / n_candidates if n_candidates else None}


# -- the sample ------------------------------------------------------------------------

@dataclass(frozen=True)
class ProbabilitySample:
    """Labelled draws: what each labelled clip stands for in the population it was drawn from."""

    keys: np.ndarray  # clip keys (object)
    y: np.ndarray  # bool
    cell: np.ndarray  # int: index of the (draw, stratum) cell
    weight: np.ndarray  # population clips each stands for, times its draw's pooling share
    n_draws: int
    draws: tuple = ()  # draw ids, sorted

    @property
    def n(self) -> int:
        return len(self.y)

    @property
    def n_pos(self) -> int:
        return int(np.sum(self.y))


def make_sample(keys, y, draw_ids, strata, stratum_sizes, inclusion_probs, cross=None) -> ProbabilitySample:
    """A :class:`ProbabilitySample` from one row per labelled draw.

    ``cross``: optional (n, number of draws) inclusion probabilities of each labelled clip in
    each draw, columns in sorted draw-id order (``sample.draws``; :func:`cross_inclusion`
    computes them); with them several draws combine into one Horvitz-Thompson sample,
    without them they are pooled with shares by number of labels.

    ``stratum_sizes`` may be None per row (an imported label with only an inclusion
    probability): its cell's N_h is then sum(1 / pi) over the cell's labels.
    """
    keys = np.asarray(keys, dtype=object)
    y = np.asarray(y, dtype=bool)
    n = len(y)
    if n == 0:
        return ProbabilitySample(keys, y, np.zeros(0, np.int64), np.zeros(0), 0, ())
    draws = np.asarray([str(d) for d in draw_ids], dtype=object)
    strata = np.asarray([0 if s is None else int(s) for s in strata], dtype=np.int64)
    probs = np.asarray(inclusion_probs, dtype=np.float64)
    if np.any(~np.isfinite(probs)) or np.any(probs <= 0) or np.any(probs > 1):
        raise ValueError("inclusion probabilities must be in (0, 1]")
    labels = [f"{d}\x00{s}" for d, s in zip(draws, strata)]
    cell_names, cell = np.unique(np.asarray(labels, dtype=object), return_inverse=True)
    weight = np.zeros(n)
    for c in range(len(cell_names)):
        members = np.flatnonzero(cell == c)
        sizes = [stratum_sizes[i] for i in members if stratum_sizes[i] is not None]
        population = float(max(sizes)) if sizes else float(np.sum(1.0 / probs[members]))
        weight[members] = population / len(members)
    draw_names, draw_of = np.unique(draws, return_inverse=True)
    if cross is None:
        # each draw estimates the population's counts; pooled with shares by number of labels
        weight *= (np.bincount(draw_of, minlength=len(draw_names)) / n)[draw_of]
    else:
        # every draw could have drawn every labelled clip: Horvitz-Thompson with the probability
        # of being in any of them, 1 - prod_d (1 - pi_d), own draw at its realised n_h / N_h
        own_prob = 1.0 / weight
        cross = np.asarray(cross, dtype=np.float64)
        if cross.shape != (n, len(draw_names)):
            raise ValueError(f"cross inclusion probabilities must be {n} x {len(draw_names)}")
        cross = cross.copy()
        cross[np.arange(n), draw_of] = own_prob
        weight = 1.0 / (1.0 - np.prod(1.0 - np.clip(cross, 0.0, 1.0), axis=1))
    return ProbabilitySample(keys, y, cell.astype(np.int64), weight, len(draw_names),
                             tuple(str(d) for d in draw_names))


SCORE_TOLERANCE = 1e-5  # scores recomputed from an artifact vs the float32 bounds stored with a draw


def cross_inclusion(drawn, first_labelled: dict, score_of) -> np.ndarray | None:
    """(n, draws) probabilities that each labelled draw's clip was drawn by each draw.

    ``drawn``: one design row per labelled clip (clip_key, draw_id, stratum, stratum_size,
    stratum_low, stratum_high, chosen_by_version, created_at), sorted by clip key;
    ``first_labelled``: clip key -> when it was first labelled; ``score_of(version, keys)``:
    that model version's scores of the keys. A clip labelled before a draw began was not in
    its population (probability 0); a uniform draw gives every other clip m / N; a
    stratified one gives m_h / N_h of the stratum the draw's model puts the clip in (0 in a
    stratum none of whose draws were labelled). None when a stratified draw's bounds are
    unknown (labels imported without them): the caller then pools draws by size.
    """
    import polars as pl

    keys = drawn["clip_key"].to_list()
    draw_names = sorted(set(drawn["draw_id"].to_list()))
    if len(draw_names) < 2:
        return None
    P = np.zeros((len(keys), len(draw_names)))
    first = [first_labelled[k] for k in keys]
    for d, name in enumerate(draw_names):
        mine = drawn.filter(pl.col("draw_id") == name)
        start = mine["created_at"].min()
        strata = (mine.group_by("stratum").agg(pl.len().alias("m"), pl.col("stratum_size").max().alias("N"),
                                               pl.col("stratum_low").min().alias("low"),
                                               pl.col("stratum_high").max().alias("high"))
                  .sort("stratum"))
        eligible = np.asarray([f >= start for f in first], dtype=bool)
        if strata.height == 1 and strata["low"][0] is None:  # a uniform draw
            P[eligible, d] = strata["m"][0] / strata["N"][0]
            continue
        if strata["low"].null_count() or strata["high"].null_count():
            return None
        version = mine["chosen_by_version"].drop_nulls()
        if version.len() == 0:
            return None
        scores = np.asarray(score_of(int(version[0]), keys), dtype=np.float64)
        for row in strata.iter_rows(named=True):
            inside = (scores >= row["low"] - SCORE_TOLERANCE) & (scores <= row["high"] + SCORE_TOLERANCE)
            P[eligible & inside, d] = np.maximum(P[eligible & inside, d], row["m"] / row["N"])
    return P


def sample_from_events(events, values: dict, score_of=None) -> ProbabilitySample:
    """The probability sample of one label from its ``label_events`` rows (a polars frame).

    A clip counts once, with the design of its latest event that carries one, and with its
    current value in ``values`` (clip key -> bool: the label set's majority; conflicts and
    withdrawn votes are absent and leave the sample). With ``score_of(version, keys)`` several
    draws combine by :func:`cross_inclusion`; without it, by size.
    """
    import polars as pl

    drawn = events.filter(pl.col("inclusion_prob").is_not_null() & pl.col("draw_id").is_not_null())
    if drawn.height:
        drawn = drawn.sort(["created_at", "event_id"]).group_by("clip_key", maintain_order=True).last()
        drawn = drawn.filter(pl.col("clip_key").is_in(list(values)))
        drawn = drawn.sort("clip_key")
    if drawn.height == 0:
        return make_sample([], [], [], [], [], [])
    keys = drawn["clip_key"].to_list()
    cross = None
    if score_of is not None:
        firsts = (events.filter(pl.col("clip_key").is_in(keys)).group_by("clip_key")
                  .agg(pl.col("created_at").min()))
        cross = cross_inclusion(drawn, dict(firsts.iter_rows()), score_of)
    return make_sample(keys, [values[k] for k in keys], drawn["draw_id"].to_list(), drawn["stratum"].to_list(),
                       drawn["stratum_size"].to_list(), drawn["inclusion_prob"].to_list(), cross)


# -- the estimator -------------------------------------------------------------------------

def _ap_rows(y: np.ndarray, scores: np.ndarray, W: np.ndarray, self_count: float = 1.0) -> np.ndarray:
    """Estimated AP for each row of weights ``W`` (B, n).

    AP is the mean over positives of the precision at each positive's score. A sampled
    positive i stands for w_i population positives, but the precision at i is about the
    clips other than i above its score, plus i itself: so i's own weight is replaced by one
    clip in the counts above it (as infAP / xinfAP do for sampled relevance judgements). With
    its own weight a positive drawn from a low stratum (w in the thousands) would make the
    precision at its score look high and AP biased upwards. Ties in score share one precision.
    """
    order = np.argsort(-scores, kind="mergesort")
    s, yy, W = scores[order], y[order], W[:, order]
    ends = np.r_[np.flatnonzero(np.diff(s)), len(s) - 1]
    group = np.repeat(np.arange(len(ends)), np.diff(np.r_[-1, ends]))
    tp = np.cumsum(W * yy, axis=1)[:, ends][:, group]  # weighted counts at or above each clip's score
    allc = np.cumsum(W, axis=1)[:, ends][:, group]
    own = W  # each clip's own weight, replaced by self_count where it counts itself
    with np.errstate(invalid="ignore", divide="ignore"):
        precision = (tp - own + self_count) / (allc - own + self_count)
        gain = W * yy
        total_pos = gain.sum(axis=1)
        ap = np.sum(gain * precision, axis=1) / total_pos
    return np.where(total_pos > 0, ap, np.nan)


def weighted_ap(y, scores, weight=None) -> float:
    """Average precision with each clip standing for ``weight`` clips (equal to scikit-learn's
    ``average_precision_score(y, scores, sample_weight=weight)``)."""
    y = np.asarray(y, dtype=bool)
    w = np.ones(len(y)) if weight is None else np.asarray(weight, dtype=np.float64)
    return float(_ap_rows(y, np.asarray(scores, dtype=np.float64), w[None, :])[0])


def _ap_rows_smoothed(y: np.ndarray, S: np.ndarray, W: np.ndarray, self_count: float = 1.0) -> np.ndarray:
    """:func:`_ap_rows` with scores of their own in each row ``S`` (B, n): continuous, no ties."""
    order = np.argsort(-S, axis=1, kind="stable")
    Ws = np.take_along_axis(W, order, axis=1)
    gain = Ws * y[order]
    tp = np.cumsum(gain, axis=1)
    allc = np.cumsum(Ws, axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        precision = (tp - Ws + self_count) / (allc - Ws + self_count)
        total_pos = gain.sum(axis=1)
        ap = np.sum(gain * precision, axis=1) / total_pos
    return np.where(total_pos > 0, ap, np.nan)


def _at_threshold(y: np.ndarray, above: np.ndarray, W: np.ndarray):
    """Precision, recall and prevalence for each row of ``W``; ``above`` (n,) or one row per row of W."""
    tp = np.sum(W * (y & above), axis=-1)
    flagged = np.sum(W * above, axis=-1)
    positives = W @ y
    total = W.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (np.where(flagged > 0, tp / flagged, np.nan), np.where(positives > 0, tp / positives, np.nan),
                positives / total)


def _smoothing(sample: ProbabilitySample, scores: np.ndarray) -> np.ndarray:
    """Each label's kernel bandwidth: Silverman's rule on the scores of its class in its cell.

    The smoothed bootstrap (Efron 1979; Silverman and Young 1987) draws each resampled clip's
    score from a kernel around its observed score. Resampling the observed scores alone cannot
    put a positive below a negative it happened to rank above, so a sample whose positives all
    rank above its negatives gave AP 1 in every resample and the interval [1, 1].
    """
    h = np.zeros(sample.n)
    for c in np.unique(sample.cell):
        for label in (False, True):  # a kernel per class: the classes' own spreads, not their distance
            members = np.flatnonzero((sample.cell == c) & (sample.y == label))
            if len(members) > 1:
                h[members] = SMOOTHING * np.std(scores[members], ddof=1) * len(members) ** -0.2
    return h


# How far the smoothed bootstrap may move a resampled score (see _resampled_scores): within the
# range its cell's scores are estimated to span, within the range they were observed to span,
# or anywhere (as before: too wide, measured in benchmarks/estimator_coverage.py).
SCORE_RANGES = ("cell_extended", "cell", "none")
SCORE_RANGE = "cell_extended"


def _resampled_scores(sample: ProbabilitySample, scores: np.ndarray, n_boot: int, rng: np.random.Generator,
                      score_range: str = SCORE_RANGE) -> np.ndarray:
    """(n_boot, n) scores of the smoothed bootstrap: each observed score plus kernel noise,
    kept within the score range of its cell's stratum (``score_range="cell_extended"``).

    A cell is a simple random sample of m of its stratum's clips, so its scores are what the
    resample knows of the stratum's; the kernel's tails go beyond them. A negative from a low
    stratum stands for hundreds of clips, and an unbounded kernel carried such negatives above
    the top strata's positives in some resamples: AP fell to a fraction in those and the live
    loop's intervals reached down to 0.27 at a true 0.99. So a resampled score is kept within
    the stratum's range as the cell estimates it: the observed range [min, max] widened at
    each end by (max - min) / (m - 1), the gap the extremes of m uniform draws leave on
    average (a boundary-corrected kernel: the density estimate restricted to the estimated
    support). Within the observed range alone (``"cell"``) the intervals were narrower but
    held the truth in only 0.90 of one case's repeats; ``"none"``: the unbounded kernel.
    """
    if score_range not in SCORE_RANGES:
        raise ValueError(f"score_range must be one of {SCORE_RANGES}, got {score_range!r}")
    S = scores[None, :] + rng.standard_normal((n_boot, sample.n)) * _smoothing(sample, scores)[None, :]
    if score_range != "none":
        low, high = np.empty(sample.n), np.empty(sample.n)
        for c in np.unique(sample.cell):
            members = sample.cell == c
            m = int(members.sum())
            lo, hi = float(scores[members].min()), float(scores[members].max())
            gap = (hi - lo) / (m - 1) if score_range == "cell_extended" and m > 1 else 0.0
            low[members], high[members] = lo - gap, hi + gap
        np.clip(S, low[None, :], high[None, :], out=S)
    return S


def _resampled_weights(sample: ProbabilitySample, n_boot: int, rng: np.random.Generator) -> np.ndarray:
    """(n_boot, n) weights of each label in stratified bootstrap resamples of ``sample``: its
    design weight times its multiplicity in Rao and Wu's rescaled bootstrap (JASA 1988), m - 1
    draws with replacement within each cell of m labels, each counted m / (m - 1) times; a
    cell's only label stands for its cell in every resample.

    Drawing m of m understates a cell's variance by the factor (m - 1) / m. In the live loop's
    audits (rounds of 25 over six strata) cells hold 2-8 labels, and a positive drawn from a
    low stratum stands for a thousand clips: there the understatement (a half at m = 2) is
    where the interval's width matters most.
    """
    counts = np.zeros((n_boot, sample.n))
    for c in np.unique(sample.cell):
        members = np.flatnonzero(sample.cell == c)
        m = len(members)
        if m == 1:
            counts[:, members] = 1.0
            continue
        counts[:, members] = rng.multinomial(m - 1, np.full(m, 1.0 / m), size=n_boot) * (m / (m - 1))
    return counts * sample.weight[None, :]


@dataclass(frozen=True)
class QualityEstimate:
    ap: float | None
    ap_low: float | None
    ap_high: float | None
    precision: float | None
    precision_low: float | None
    precision_high: float | None
    recall: float | None
    recall_low: float | None
    recall_high: float | None
    prevalence: float | None  # the random baseline's AP
    prevalence_low: float | None
    prevalence_high: float | None
    threshold: float
    n_audit: int  # labelled draws the estimate rests on
    n_audit_pos: int
    n_draws: int
    method: str
    level: float = LEVEL

    @property
    def needed(self) -> int:
        return audit_labels_needed(self.n_audit, self.n_audit_pos)

    def as_dict(self) -> dict:
        return {**asdict(self), "needed": self.needed}

    def describe(self) -> str:
        """One line for a person: the estimate and its interval, or what is missing."""
        if self.ap is None:
            return f"AP on the corpus: unknown (needs {self.needed} more audit labels: label an audit round)"
        text = (f"AP on the corpus {self.ap:.3f} [{self.ap_low:.3f}, {self.ap_high:.3f}] "
                f"({self.level:.0%} interval, {self.n_audit} audit labels, {self.n_audit_pos} positive)")
        if self.method == PROVISIONAL:
            text += f"; provisional: needs {self.needed} more audit labels"
        return text


def audit_labels_needed(n_audit: int, n_audit_pos: int) -> int:
    """More labelled draws wanted before the estimate is more than provisional (0: enough)."""
    missing = max(0, MIN_AUDIT - n_audit)
    if n_audit_pos < MIN_AUDIT_POS:
        # positives turn up at the sample's rate so far; before any, at the rate the audit design
        # aims for (a fifth of its draws are in the top 5% of scores, where a rare concept lives)
        rate = max(n_audit_pos / n_audit, 1 / 25) if n_audit else 1 / 8
        missing = max(missing, int(np.ceil((MIN_AUDIT_POS - n_audit_pos) / rate)))
    return missing


def _jackknife_weights(sample: ProbabilitySample, rows: np.ndarray) -> np.ndarray:
    """Weights with label i left out, one row per i in ``rows``: the rest of its cell stands for
    the cell (weights times m / (m - 1)); a cell's only label takes its cell with it."""
    counts = np.bincount(sample.cell)
    m = counts[sample.cell[rows]]
    same = sample.cell[rows][:, None] == sample.cell[None, :]
    scale = np.where(same & (m[:, None] > 1), (m / np.maximum(m - 1, 1))[:, None], 1.0)
    J = scale * sample.weight[None, :]
    J[np.arange(len(rows)), rows] = 0.0
    return J


def _interval(point: float, values: np.ndarray, jack: np.ndarray | None, level: float):
    """The bias-corrected and accelerated (BCa) bootstrap interval; the percentile interval
    when the jackknife says nothing (no spread).

    Percentile intervals of these ratio estimators held the truth in 0.77-0.86 of repeated
    100-label audits of rare concepts; BCa, which corrects for the estimator's bias and skew
    (Efron 1987), in 0.83-0.93.
    """
    from statistics import NormalDist

    values = values[np.isfinite(values)]
    if not np.isfinite(point) or len(values) == 0:
        return None, None
    tail = (1 - level) / 2
    quantiles = np.array([tail, 1 - tail])
    if jack is not None:
        jack = jack[np.isfinite(jack)]
    if jack is not None and len(jack) > 2 and np.ptp(jack) > 0:
        nd = NormalDist()
        z0 = nd.inv_cdf(float(np.clip(np.mean(values < point) + 0.5 * np.mean(values == point), 1e-3, 1 - 1e-3)))
        d = jack.mean() - jack
        a = float(np.sum(d ** 3) / (6 * np.sum(d ** 2) ** 1.5))
        z = np.array([nd.inv_cdf(q) for q in quantiles])
        quantiles = np.array([nd.cdf(z0 + (z0 + zq) / (1 - a * (z0 + zq))) for zq in z])
    low, high = np.quantile(values, quantiles)
    return float(min(low, point)), float(max(high, point))


def _wilson(point: float, values: np.ndarray, count: int, level: float):
    """Korn and Graubard's interval for a proportion from a complex sample (Survey Methodology
    1998): Wilson's score interval at the effective sample size p(1 - p) / var(p), var from
    the resamples, at most the ``count`` labels the proportion averages over.

    AP, precision, recall and prevalence are weighted means of values in [0, 1]. Near 0 or 1,
    with few positives, resampling the sample shows too little of what it missed (a low
    stratum without a drawn positive varies in no resample; at AP 1 nothing varies); the
    score interval's width comes from the number of labels and does not vanish there.
    """
    from statistics import NormalDist

    values = values[np.isfinite(values)]
    var = float(np.var(values)) if len(values) > 1 else 0.0
    n = float(count)
    if 0 < point < 1 and var > 0:
        n = min(n, point * (1 - point) / var)
    n = max(n, 1.0)
    z = NormalDist().inv_cdf(1 - (1 - level) / 2)
    centre = (point + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * np.sqrt(point * (1 - point) / n + z * z / (4 * n * n))
    return float(min(point, max(0.0, centre - half))), float(max(point, min(1.0, centre + half)))


def _or_none(x: float) -> float | None:
    return float(x) if np.isfinite(x) else None


def estimate(sample: ProbabilitySample, scores, threshold: float, level: float = LEVEL,
             n_boot: int = N_BOOT, seed: int = SEED, score_range: str = SCORE_RANGE) -> QualityEstimate:
    """Corpus AP, precision and recall at ``threshold``, prevalence, with ``level`` intervals.

    ``score_range``: how the smoothed bootstrap bounds a resampled score (:func:`_resampled_scores`).

    ``scores`` are the model's scores of ``sample.keys`` (same order), from a model that was
    not trained on those clips.
    """
    scores = np.asarray(scores, dtype=np.float64)
    if len(scores) != sample.n:
        raise ValueError(f"{len(scores)} scores for a sample of {sample.n} labels")
    if sample.n == 0 or sample.n_pos == 0:
        none = (None,) * 12
        return QualityEstimate(*none, float(threshold), sample.n, sample.n_pos, sample.n_draws, NO_AUDIT, level)
    rng = np.random.default_rng(seed)
    W = sample.weight[None, :]
    above = scores >= threshold
    ap = _ap_rows(sample.y, scores, W)
    precision, recall, prevalence = _at_threshold(sample.y, above, W)
    if n_boot:
        B = _resampled_weights(sample, n_boot, rng)
        S = _resampled_scores(sample, scores, n_boot, rng, score_range)
        ap = np.r_[ap, _ap_rows_smoothed(sample.y, S, B)]
        precision, recall, prevalence = (np.r_[a, b] for a, b in
                                         zip((precision, recall, prevalence), _at_threshold(sample.y, S >= threshold, B)))
    jacks = [np.zeros(0)] * 4
    if n_boot:  # the jackknife of BCa's acceleration, in blocks of rows (memory n x block)
        parts = []
        for start in range(0, sample.n, JACKKNIFE_BLOCK):
            J = _jackknife_weights(sample, np.arange(start, min(start + JACKKNIFE_BLOCK, sample.n)))
            parts.append((_ap_rows(sample.y, scores, J), *_at_threshold(sample.y, above, J)))
        jacks = [np.concatenate([p[i] for p in parts]) for i in range(4)]
    # labels each proportion averages over: AP and recall over the positives, precision over
    # the flagged clips, prevalence over all
    counts = (sample.n_pos, int(np.sum(above)), sample.n_pos, sample.n)
    out = []
    for values, jack, count in zip((ap, precision, recall, prevalence), jacks, counts):
        point = values[0]
        low, high = _interval(point, values[1:], jack if n_boot else None, level)
        if low is not None:  # the hull of the two: each alone held the truth too rarely somewhere
            wilson_low, wilson_high = _wilson(point, values[1:], count, level)
            low, high = min(low, wilson_low), max(high, wilson_high)
        out += [_or_none(point), low, high]
    enough = sample.n >= MIN_AUDIT and sample.n_pos >= MIN_AUDIT_POS
    return QualityEstimate(*out, float(threshold), sample.n, sample.n_pos, sample.n_draws,
                           METHOD if enough else PROVISIONAL, level)


@dataclass(frozen=True)
class Difference:
    """AP of one ranking minus another's on the same labelled draws, with a ``level`` interval."""
    point: float
    low: float
    high: float
    level: float = LEVEL

    @property
    def clear(self) -> bool:
        """Whether the second ranking is better beyond the sample's noise (the interval above 0)."""
        return self.low > 0

    def as_dict(self) -> dict:
        return asdict(self)


def paired_difference(sample: ProbabilitySample, scores_a, scores_b, level: float = LEVEL, n_boot: int = N_BOOT,
                      seed: int = SEED) -> Difference:
    """AP by ``scores_b`` minus AP by ``scores_a`` (both of ``sample.keys``), with the percentile
    interval of a stratified bootstrap whose resamples are shared by the two.

    Two estimates on the same draws err together (a lucky sample flatters both), so their
    difference varies far less than either; comparing two point estimates switches on noise,
    comparing two intervals almost never switches. The observed scores are resampled as they
    are (no kernel): the kernel's noise would be drawn for each ranking on its own, which is
    spread the comparison does not have.
    """
    a = np.asarray(scores_a, dtype=np.float64)
    b = np.asarray(scores_b, dtype=np.float64)
    if len(a) != sample.n or len(b) != sample.n:
        raise ValueError(f"{len(a)} and {len(b)} scores for a sample of {sample.n} labels")
    if sample.n_pos == 0:
        raise ValueError("no positive among the labelled draws: AP is undefined for both")
    W = sample.weight[None, :]
    point = float(_ap_rows(sample.y, b, W)[0] - _ap_rows(sample.y, a, W)[0])
    B = _resampled_weights(sample, n_boot, np.random.default_rng(seed))  # shared by both rankings
    spread = _ap_rows(sample.y, b, B) - _ap_rows(sample.y, a, B)
    spread = spread[np.isfinite(spread)]  # a resample without a positive says nothing of AP
    tail = (1 - level) / 2
    # no resample with a positive (not seen with n_boot in the hundreds): the whole range
    low, high = np.quantile(spread, [tail, 1 - tail]) if len(spread) else (-1.0, 1.0)
    return Difference(point, float(min(low, point)), float(max(high, point)), level)


# -- a model version -------------------------------------------------------------------------

def label_sample(wh, label: str, values: dict, version: int | None = None, score_of=None) -> ProbabilitySample:
    """The probability sample of ``label``'s events (at a ``label_events`` version)."""
    events = wh.read("label_events", where={"label": label}, version=version)
    return sample_from_events(events, values, score_of)


CROSS_FIT_IMPOSSIBLE = "too_few_labels_outside_the_sample"
CROSS_FOLDS = 5  # refits per version: each is a full fit of the trainer (most of a build's time then)


def cross_fold(key: str, folds: int = CROSS_FOLDS) -> int:
    import zlib

    return zlib.crc32(key.encode()) % folds


def cross_fitted_scores(sample: ProbabilitySample, matrix_of, model, training_keys, training_y, refit,
                        folds: int = CROSS_FOLDS) -> np.ndarray | None:
    """Scores of ``sample``'s clips by ``model``, the clips it was trained on by cross-fitted
    refits (see :func:`estimate_model`); None when a refit lacks labels of a class."""
    from va_core.errors import InputError

    keys = list(training_keys)
    y = np.asarray(training_y, dtype=bool)
    trained = set(keys)
    sample_keys = sample.keys.tolist()
    scores = np.asarray(model.score(matrix_of(sample_keys)), dtype=np.float64)
    fold_of = np.asarray([cross_fold(k, folds) for k in sample_keys])
    in_training = np.asarray([k in trained for k in sample_keys], dtype=bool)
    for f in np.unique(fold_of[in_training]):
        held = set(np.asarray(sample_keys, dtype=object)[(fold_of == f) & in_training].tolist())
        keep = np.asarray([k not in held for k in keys], dtype=bool)
        try:
            scorer = refit(matrix_of([k for k, ok in zip(keys, keep) if ok]), y[keep])
        except InputError:  # too few labels of a class outside the fold
            return None
        rows = np.flatnonzero((fold_of == f) & in_training)
        scores[rows] = scorer.score(matrix_of([sample_keys[i] for i in rows]))
    return scores


def estimate_model(sample: ProbabilitySample, matrix_of, model, training_keys, training_y, refit,
                   n_boot: int = N_BOOT, folds: int = CROSS_FOLDS, scores=None) -> QualityEstimate:
    """The estimate for a model version (``model.score``, ``model.threshold``).

    ``matrix_of(keys)`` gives the embeddings of clip keys; ``refit(X, y)`` fits a model as the
    version's trainer does. A sampled clip the version was trained on would be scored too
    well, so sampled clips are scored by cross-fitting: they are split into ``folds`` folds
    (by a hash of the key), and each fold is scored by a model refitted on the version's
    training labels minus that fold. Each refit misses a fifth of the sampled labels only, so
    the estimate describes the stored version closely and errs, if at all, on the low side.
    Sampled clips the version was not trained on are scored by the version itself.
    ``scores``: :func:`cross_fitted_scores` computed before for the same model and labels
    (they do not depend on the threshold), to skip the refits.
    """
    if sample.n == 0:
        return estimate(sample, np.zeros(0), model.threshold, n_boot=n_boot)
    if scores is None:
        scores = cross_fitted_scores(sample, matrix_of, model, training_keys, training_y, refit, folds)
    if scores is None:
        base = estimate(sample, np.zeros(sample.n), model.threshold, n_boot=0)
        return QualityEstimate(*(None,) * 12, base.threshold, base.n_audit, base.n_audit_pos, base.n_draws,
                               CROSS_FIT_IMPOSSIBLE, base.level)
    return estimate(sample, scores, model.threshold, n_boot=n_boot)
