"""Customer lifetime value: BG/NBD (how many purchases, and is the customer still alive) with Gamma-Gamma
(how much per purchase), fitted by maximum likelihood with numpy/scipy. Pure functions, no I/O.

Models (the derivations and the notation follow the papers; docs/clv.md explains them in prose):

- BG/NBD, Fader, Hardie & Lee (2005), "Counting your customers the easy way". While alive, a customer buys
  as a Poisson process with rate lambda ~ Gamma(r, alpha); after every *repeat* purchase they drop out for
  good with probability p ~ Beta(a, b).
- Gamma-Gamma, Fader, Hardie & Lee (2005), "RFM and CLV: using iso-value curves". The value of each purchase
  is Gamma(p, nu) with nu ~ Gamma(q, v) per customer, independent of the purchase process; the spend of a
  customer with x repeat purchases averaging m_x is shrunk towards the population mean p*v/(q-1).

Inputs per customer, in days (the time unit): ``frequency`` x = repeat purchase days (distinct days with an
order, minus the first); ``recency`` t_x = days from the first to the last purchase day; ``T`` = days from
the first purchase day to the end of observation; ``monetary`` m_x = mean net value of the repeat purchase
days (0 when x = 0). Several orders on one day count as one purchase worth their sum.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy.optimize import minimize
from scipy.special import expit, gammaln, hyp2f1

DAYS_PER_YEAR = 365
# a + b above which the dropout probability is treated as concentrated at its mean (see below).
CONCENTRATED_DROPOUT = 1000.0


# --------------------------------------------------------------------------------------------------------
# Parameters and fits
# --------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BgNbdParams:
    """BG/NBD parameters: purchase rate lambda ~ Gamma(shape r, rate alpha [days]); dropout p ~ Beta(a, b)."""

    r: float
    alpha: float
    a: float
    b: float

    def as_tuple(self) -> tuple[float, float, float, float]:
        return (self.r, self.alpha, self.a, self.b)


@dataclass(frozen=True)
class GammaGammaParams:
    """Gamma-Gamma parameters: purchase value ~ Gamma(shape p, rate nu), nu ~ Gamma(shape q, rate v)."""

    p: float
    q: float
    v: float

    @property
    def population_mean_value(self) -> float:
        """Mean purchase value of the population, p*v/(q-1); infinite when q <= 1."""
        return self.p * self.v / (self.q - 1) if self.q > 1 else float("inf")


@dataclass(frozen=True)
class Fit:
    """A maximum-likelihood fit: parameters, total log-likelihood, sample size and optimizer status."""

    params: Any
    log_likelihood: float
    n_customers: int
    converged: bool
    message: str

    def as_metadata(self) -> dict[str, Any]:
        return {
            **{k: round(float(v), 6) for k, v in asdict(self.params).items()},
            "log_likelihood": round(self.log_likelihood, 3),
            "n_customers": self.n_customers,
            "converged": self.converged,
        }


def _arrays(*values: Any) -> tuple[np.ndarray, ...]:
    return tuple(np.asarray(v, dtype=float) for v in values)


# --------------------------------------------------------------------------------------------------------
# BG/NBD
# --------------------------------------------------------------------------------------------------------


def bgnbd_log_likelihood(params: BgNbdParams, frequency: Any, recency: Any, T: Any) -> np.ndarray:
    """Log-likelihood of each customer's (x, t_x, T) under BG/NBD (FHL 2005, eq. 6).

    L = B(a, b+x)/B(a, b) * G(r+x)/G(r) * alpha^r * [ 1/(alpha+T)^(r+x)
        + 1{x>0} * a/(b+x-1) * 1/(alpha+t_x)^(r+x) ] (the Beta-function ratio written with gammaln).
    """
    r, alpha, a, b = params.as_tuple()
    x, t_x, t_obs = _arrays(frequency, recency, T)
    repeat = x > 0
    ln_a1 = gammaln(r + x) - gammaln(r) + r * np.log(alpha)
    ln_a2 = gammaln(a + b) + gammaln(b + x) - gammaln(b) - gammaln(a + b + x)
    ln_a3 = -(r + x) * np.log(alpha + t_obs)
    b_x_1 = np.where(repeat, b + x - 1, 1.0)  # only used where x > 0 (b + x - 1 > 0 there)
    ln_a4 = np.where(repeat, np.log(a) - np.log(b_x_1) - (r + x) * np.log(alpha + t_x), -np.inf)
    return ln_a1 + ln_a2 + np.logaddexp(ln_a3, ln_a4)


def _log_odds_dead(params: BgNbdParams, x: np.ndarray, t_x: np.ndarray, t_obs: np.ndarray) -> np.ndarray:
    """log( a/(b+x-1) * ((alpha+T)/(alpha+t_x))^(r+x) ) for x > 0, -inf for x = 0 (never dead)."""
    r, alpha, a, b = params.as_tuple()
    repeat = x > 0
    b_x_1 = np.where(repeat, b + x - 1, 1.0)
    log_odds = np.log(a) - np.log(b_x_1) + (r + x) * (np.log(alpha + t_obs) - np.log(alpha + t_x))
    return np.where(repeat, log_odds, -np.inf)


def bgnbd_p_alive(params: BgNbdParams, frequency: Any, recency: Any, T: Any) -> np.ndarray:
    """P(still alive at T | x, t_x, T) = 1 / (1 + 1{x>0} a/(b+x-1) ((alpha+T)/(alpha+t_x))^(r+x))."""
    x, t_x, t_obs = _arrays(frequency, recency, T)
    return expit(-_log_odds_dead(params, x, t_x, t_obs))


def bgnbd_expected_purchases(
    params: BgNbdParams, t: float, frequency: Any, recency: Any, T: Any
) -> np.ndarray:
    """Expected repeat purchases in the next ``t`` days given (x, t_x, T) (FHL 2005, eq. 10).

    E[Y(t)] = (a+b+x-1)/(a-1) * [1 - ((alpha+T)/(alpha+T+t))^(r+x) 2F1(r+x, b+x; a+b+x-1; z)]
              / (1 + 1{x>0} a/(b+x-1) ((alpha+T)/(alpha+t_x))^(r+x)),   z = t/(alpha+T+t).

    The hypergeometric term goes through Euler's transformation, (1-z)^(r+x) 2F1(r+x, b+x; c; z) =
    (1-z)^(a-1) 2F1(a+b-1-r, a-1; c; z), which stays finite for customers with hundreds of purchases where
    the textbook form overflows. a = 1 is a removable singularity: a is nudged by 1e-7 there.

    When the dropout probability is nearly the same for everyone (a + b >= ``CONCENTRATED_DROPOUT``; the
    fit drifts there when the data show no heterogeneity in p) the Gauss hypergeometric series loses all
    precision; E[Y(t)] = P(alive) E[Y(t) | alive] is then computed with p at its posterior mean
    p* = a/(a+b+x): P(alive) * (1/p*) [1 - ((alpha+T)/(alpha+T+p* t))^(r+x)] (exact in the limit, within
    0.1% of the series at a + b = 1000).
    """
    r, alpha, a, b = params.as_tuple()
    x, t_x, t_obs = _arrays(frequency, recency, T)
    if a + b < CONCENTRATED_DROPOUT:
        a_safe = 1 + 1e-7 if abs(a - 1) < 1e-7 else a
        one_minus_z = (alpha + t_obs) / (alpha + t_obs + t)
        z = t / (alpha + t_obs + t)
        c = a_safe + b + x - 1
        with np.errstate(invalid="ignore", over="ignore"):
            tail = one_minus_z ** (a_safe - 1) * hyp2f1(a_safe + b - 1 - r, a_safe - 1, c, z)
            numerator = c / (a_safe - 1) * (1 - tail)
        odds_dead = np.exp(_log_odds_dead(BgNbdParams(r, alpha, a_safe, b), x, t_x, t_obs))
        exact = numerator / (1 + odds_dead)
        if np.all(np.isfinite(exact)):
            return exact
    else:
        exact = np.full_like(x, np.nan)
    p_star = a / (a + b + x)
    alive_purchases = (1 - ((alpha + t_obs) / (alpha + t_obs + p_star * t)) ** (r + x)) / p_star
    concentrated = bgnbd_p_alive(params, x, t_x, t_obs) * alive_purchases
    return np.where(np.isfinite(exact), exact, concentrated)


def bgnbd_expected_purchases_new_customer(params: BgNbdParams, t: float) -> float:
    """E[X(t)] for a customer just acquired:
    (a+b-1)/(a-1) [1 - (alpha/(alpha+t))^r 2F1(r, b; a+b-1; t/(alpha+t))]."""
    return float(bgnbd_expected_purchases(params, t, [0.0], [0.0], [0.0])[0])


def _compress(*columns: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Unique rows of the stacked columns and their counts: the likelihood only depends on these."""
    stacked = np.column_stack(columns)
    unique, counts = np.unique(stacked, axis=0, return_counts=True)
    return unique, counts.astype(float)


def fit_bgnbd(
    frequency: Any,
    recency: Any,
    T: Any,
    *,
    initial: BgNbdParams | None = None,
    penalizer: float = 0.0,
) -> Fit:
    """Maximum-likelihood BG/NBD: minimise the negative mean log-likelihood over log-parameters (L-BFGS-B).

    Identical (x, t_x, T) rows are fitted once with a weight, so millions of customers with day-granular
    inputs cost little more than thousands. ``penalizer`` adds ``penalizer * sum(params^2)`` (0: plain MLE).
    """
    x, t_x, t_obs = _arrays(frequency, recency, T)
    if len(x) == 0:
        raise ValueError("cannot fit BG/NBD on zero customers")
    if np.any(x < 0) or np.any(t_x < 0) or np.any(t_obs < t_x) or np.any((x > 0) & (t_x <= 0)):
        raise ValueError("BG/NBD needs x >= 0, 0 <= t_x <= T and t_x > 0 whenever x > 0")
    unique, weights = _compress(x, t_x, t_obs)
    ux, ut_x, uT = unique.T
    total = weights.sum()
    if initial is None:
        rate = max(x.mean() / max(t_obs.mean(), 1.0), 1e-4)
        initial = BgNbdParams(r=1.0, alpha=1.0 / rate, a=0.8, b=2.5)

    def objective(log_params: np.ndarray) -> float:
        params = BgNbdParams(*np.exp(log_params))
        ll = bgnbd_log_likelihood(params, ux, ut_x, uT)
        penalty = penalizer * float(np.sum(np.exp(log_params) ** 2))
        value = -float(np.dot(weights, ll)) / total + penalty
        return value if np.isfinite(value) else 1e12

    result = _minimise(objective, np.log(initial.as_tuple()), BGNBD_LOG_BOUNDS)
    params = BgNbdParams(*(float(v) for v in np.exp(result.x)))
    log_likelihood = float(np.dot(weights, bgnbd_log_likelihood(params, ux, ut_x, uT)))
    return Fit(params, log_likelihood, len(x), bool(result.success), str(result.message))


# Bounds of the log-parameters: wide enough for any realistic population (alpha up to ~9 000 years of days,
# v up to ~7e10 currency units), narrow enough that a flat likelihood cannot run the optimizer to overflow.
# a and b stop at e^10 ~ 22 000: beyond that the Beta is a spike and predictions do not change.
BGNBD_LOG_BOUNDS = [(-10.0, 10.0), (-10.0, 15.0), (-10.0, 10.0), (-10.0, 10.0)]  # r, alpha, a, b
GAMMA_GAMMA_LOG_BOUNDS = [(-10.0, 10.0), (-10.0, 10.0), (-10.0, 25.0)]  # p, q, v


def _minimise(objective: Any, start: np.ndarray, bounds: list[tuple[float, float]]) -> Any:
    """L-BFGS-B on bounded log-parameters, polished by Nelder-Mead when the gradient method stalls."""
    start = np.clip(start, [low for low, _ in bounds], [high for _, high in bounds])
    result = minimize(objective, start, method="L-BFGS-B", bounds=bounds)
    if not result.success:
        polished = minimize(
            objective,
            result.x,
            method="Nelder-Mead",
            options={"maxiter": 4000, "xatol": 1e-6, "fatol": 1e-10},
        )
        if polished.fun <= result.fun:
            result = polished
    return result


def simulate_bgnbd(params: BgNbdParams, T: Any, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Draw (frequency, recency) for customers observed ``T`` days after their first purchase.

    Each customer draws lambda ~ Gamma(r, scale 1/alpha) and p ~ Beta(a, b), buys after exponential waits
    while alive, and drops out with probability p right after each repeat purchase.
    """
    rng = np.random.default_rng(seed)
    t_obs = np.asarray(T, dtype=float)
    n = len(t_obs)
    rate = rng.gamma(params.r, 1.0 / params.alpha, n)
    dropout = rng.beta(params.a, params.b, n)
    frequency = np.zeros(n)
    recency = np.zeros(n)
    clock = np.zeros(n)
    active = np.ones(n, dtype=bool)
    while active.any():
        index = np.flatnonzero(active)
        clock[index] += rng.exponential(1.0 / rate[index])
        bought = clock[index] <= t_obs[index]
        buyers = index[bought]
        frequency[buyers] += 1
        recency[buyers] = clock[buyers]
        active[index[~bought]] = False
        active[buyers[rng.random(len(buyers)) < dropout[buyers]]] = False
    return frequency, recency


# --------------------------------------------------------------------------------------------------------
# Gamma-Gamma
# --------------------------------------------------------------------------------------------------------


def gamma_gamma_log_likelihood(params: GammaGammaParams, frequency: Any, monetary: Any) -> np.ndarray:
    """Log-density of the mean value m_x of x purchases (x >= 1, m_x > 0) under Gamma-Gamma:

    f(m_x) = G(px+q)/(G(px) G(q)) * v^q * m_x^(px-1) * x^(px) / (v + x m_x)^(px+q).
    """
    p, q, v = params.p, params.q, params.v
    x, m = _arrays(frequency, monetary)
    return (
        gammaln(p * x + q)
        - gammaln(p * x)
        - gammaln(q)
        + q * np.log(v)
        + (p * x - 1) * np.log(m)
        + p * x * np.log(x)
        - (p * x + q) * np.log(x * m + v)
    )


def fit_gamma_gamma(
    frequency: Any, monetary: Any, *, initial: GammaGammaParams | None = None, penalizer: float = 0.0
) -> Fit:
    """Maximum-likelihood Gamma-Gamma on customers with at least one repeat purchase and positive spend."""
    x, m = _arrays(frequency, monetary)
    keep = (x > 0) & (m > 0)
    x, m = x[keep], m[keep]
    if len(x) < 3:
        raise ValueError("Gamma-Gamma needs at least 3 customers with a repeat purchase and positive spend")
    if initial is None:
        initial = GammaGammaParams(p=2.0, q=3.0, v=float(np.mean(m)))

    def objective(log_params: np.ndarray) -> float:
        params = GammaGammaParams(*np.exp(log_params))
        penalty = penalizer * float(np.sum(np.exp(log_params) ** 2))
        value = -float(np.mean(gamma_gamma_log_likelihood(params, x, m))) + penalty
        return value if np.isfinite(value) else 1e12

    result = _minimise(objective, np.log([initial.p, initial.q, initial.v]), GAMMA_GAMMA_LOG_BOUNDS)
    params = GammaGammaParams(*(float(v) for v in np.exp(result.x)))
    log_likelihood = float(np.sum(gamma_gamma_log_likelihood(params, x, m)))
    return Fit(params, log_likelihood, len(x), bool(result.success), str(result.message))


def gamma_gamma_expected_value(params: GammaGammaParams, frequency: Any, monetary: Any) -> np.ndarray:
    """E[purchase value | x, m_x] = p (v + x m_x) / (p x + q - 1), a weighted mean of the population mean
    p v/(q-1) and the customer's own mean m_x (weight px/(px+q-1)). Customers with x = 0 get the population
    mean; when q <= 1 that mean does not exist and the mean of the observed m_x (x > 0) stands in."""
    p, q, v = params.p, params.q, params.v
    x, m = _arrays(frequency, monetary)
    m = np.maximum(m, 0.0)
    observed = x > 0
    if q > 1:
        population_mean = params.population_mean_value
    else:
        population_mean = float(np.mean(m[observed])) if observed.any() else 0.0
    with np.errstate(divide="ignore", invalid="ignore"):
        conditional = p * (v + x * m) / (p * x + q - 1)
    return np.where(observed & (p * x + q - 1 > 0), conditional, population_mean)


def simulate_gamma_gamma(params: GammaGammaParams, frequency: Any, seed: int = 0) -> np.ndarray:
    """Draw each customer's mean purchase value m_x over ``frequency`` purchases (0 where frequency = 0)."""
    rng = np.random.default_rng(seed)
    x = np.asarray(frequency, dtype=float)
    nu = rng.gamma(params.q, 1.0 / params.v, len(x))
    # The mean of x Gamma(p, rate nu) draws is Gamma(p x, rate nu x).
    safe_x = np.maximum(x, 1)
    mean_value = rng.gamma(params.p * safe_x, 1.0 / (nu * safe_x))
    return np.where(x > 0, mean_value, 0.0)


# --------------------------------------------------------------------------------------------------------
# From order history to predictions
# --------------------------------------------------------------------------------------------------------

SUMMARY_COLUMNS = ["customer_id", "frequency", "recency", "T", "monetary", "orders", "historical_clv"]


def summarise_orders(orders: pd.DataFrame, observation_end: Any) -> pd.DataFrame:
    """Per-customer (frequency, recency, T, monetary) from orders with columns
    ``customer_id, ordered_at, net_revenue``, observed up to ``observation_end`` (inclusive, by day).

    Purchase days are UTC calendar days. ``orders`` = orders counted; ``historical_clv`` = their net revenue.
    """
    end_day = _utc_day(observation_end)
    frame = orders.loc[:, ["customer_id", "ordered_at", "net_revenue"]].copy()
    frame["day"] = _utc_days(frame["ordered_at"])
    frame = frame[frame["day"] <= end_day]
    if frame.empty:
        return pd.DataFrame({c: pd.Series(dtype=float) for c in SUMMARY_COLUMNS}).astype(
            {"customer_id": object}
        )
    frame["net_revenue"] = frame["net_revenue"].astype(float)
    days = (
        frame.groupby(["customer_id", "day"], sort=True)
        .agg(value=("net_revenue", "sum"), orders=("net_revenue", "size"))
        .reset_index()
    )
    first_day = days.groupby("customer_id")["day"].transform("min")
    days["is_first"] = days["day"] == first_day
    per_customer = days.groupby("customer_id").agg(
        first_day=("day", "min"),
        last_day=("day", "max"),
        purchase_days=("day", "size"),
        orders=("orders", "sum"),
        historical_clv=("value", "sum"),
    )
    repeat_value = days[~days["is_first"]].groupby("customer_id")["value"].mean()
    summary = pd.DataFrame(
        {
            "customer_id": per_customer.index,
            "frequency": (per_customer["purchase_days"] - 1).to_numpy(dtype=float),
            "recency": (per_customer["last_day"] - per_customer["first_day"]).dt.days.to_numpy(dtype=float),
            "T": (end_day - per_customer["first_day"]).dt.days.to_numpy(dtype=float),
            "monetary": repeat_value.reindex(per_customer.index).fillna(0.0).to_numpy(dtype=float),
            "orders": per_customer["orders"].to_numpy(dtype=int),
            "historical_clv": per_customer["historical_clv"].to_numpy(dtype=float),
        }
    )
    return summary.reset_index(drop=True)


def _utc_days(values: pd.Series) -> pd.Series:
    stamps = pd.to_datetime(values, utc=True)
    return stamps.dt.tz_localize(None).dt.floor("D")


def _utc_day(value: Any) -> pd.Timestamp:
    stamp = pd.Timestamp(value)
    stamp = stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
    return stamp.tz_localize(None).floor("D")


@dataclass(frozen=True)
class ClvModel:
    """A fitted BG/NBD + Gamma-Gamma pair."""

    purchases: Fit
    spend: Fit

    @property
    def bgnbd(self) -> BgNbdParams:
        return self.purchases.params

    @property
    def gamma_gamma(self) -> GammaGammaParams:
        return self.spend.params


def fit_clv_model(summary: pd.DataFrame, *, penalizer: float = 0.0) -> ClvModel:
    """Fit BG/NBD on every customer's (frequency, recency, T) and Gamma-Gamma on repeat buyers' spend."""
    purchases = fit_bgnbd(summary["frequency"], summary["recency"], summary["T"], penalizer=penalizer)
    spend = fit_gamma_gamma(summary["frequency"], summary["monetary"], penalizer=penalizer)
    return ClvModel(purchases, spend)


def predict_clv(summary: pd.DataFrame, model: ClvModel, horizon_days: float = DAYS_PER_YEAR) -> pd.DataFrame:
    """Add ``p_alive``, ``expected_purchases``, ``expected_avg_order_value`` and ``predicted_clv``
    (= expected purchases x expected value, undiscounted) over the next ``horizon_days``."""
    x, t_x, t_obs = summary["frequency"], summary["recency"], summary["T"]
    out = summary.copy()
    out["p_alive"] = bgnbd_p_alive(model.bgnbd, x, t_x, t_obs)
    out["expected_purchases"] = bgnbd_expected_purchases(model.bgnbd, horizon_days, x, t_x, t_obs)
    out["expected_avg_order_value"] = gamma_gamma_expected_value(model.gamma_gamma, x, summary["monetary"])
    out["predicted_clv"] = out["expected_purchases"] * out["expected_avg_order_value"]
    return out


# --------------------------------------------------------------------------------------------------------
# Backtest
# --------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Backtest:
    """Fit on orders up to ``calibration_end``, predict the holdout (``holdout_days``), compare to actuals.

    Purchases are repeat purchase days in the holdout; revenue is their net revenue. ``*_pct_error`` is the
    aggregate error (sum predicted - sum actual) / sum actual; ``*_correlation`` is Pearson's r across
    customers; MAE is per customer.
    """

    calibration_end: str
    observation_end: str
    holdout_days: int
    n_customers: int
    actual_purchases: float
    predicted_purchases: float
    purchases_mae: float
    purchases_pct_error: float
    purchases_correlation: float
    actual_revenue: float
    predicted_revenue: float
    revenue_mae: float
    revenue_pct_error: float
    revenue_correlation: float
    model: dict[str, Any]

    def as_metadata(self) -> dict[str, Any]:
        return {k: (round(v, 4) if isinstance(v, float) else v) for k, v in asdict(self).items()}


def backtest(
    orders: pd.DataFrame, observation_end: Any, *, holdout_months: int = 6, penalizer: float = 0.0
) -> Backtest:
    """Hold out the last ``holdout_months`` before ``observation_end``; customers are those who bought before
    the calibration end (the model says nothing about customers not yet acquired)."""
    end_day = _utc_day(observation_end)
    calibration_end = end_day - pd.DateOffset(months=holdout_months)
    holdout_days = int((end_day - calibration_end).days)
    days = _utc_days(orders["ordered_at"])
    calibration = summarise_orders(orders[days <= calibration_end], calibration_end)
    if calibration.empty:
        raise ValueError("no orders before the calibration end: shorten the holdout")
    model = fit_clv_model(calibration, penalizer=penalizer)
    predicted = predict_clv(calibration, model, horizon_days=holdout_days).set_index("customer_id")

    holdout = orders.loc[(days > calibration_end) & (days <= end_day), ["customer_id", "net_revenue"]].copy()
    holdout["day"] = days[holdout.index]
    holdout["net_revenue"] = holdout["net_revenue"].astype(float)
    actual = holdout.groupby("customer_id").agg(purchases=("day", "nunique"), revenue=("net_revenue", "sum"))
    actual = actual.reindex(predicted.index).fillna(0.0)
    pred_purchases = predicted["expected_purchases"].to_numpy()
    pred_revenue = predicted["predicted_clv"].to_numpy()
    act_purchases = actual["purchases"].to_numpy(dtype=float)
    act_revenue = actual["revenue"].to_numpy(dtype=float)
    return Backtest(
        calibration_end=str(calibration_end.date()),
        observation_end=str(end_day.date()),
        holdout_days=holdout_days,
        n_customers=len(predicted),
        actual_purchases=float(act_purchases.sum()),
        predicted_purchases=float(pred_purchases.sum()),
        purchases_mae=float(np.mean(np.abs(pred_purchases - act_purchases))),
        purchases_pct_error=_pct_error(pred_purchases, act_purchases),
        purchases_correlation=_correlation(pred_purchases, act_purchases),
        actual_revenue=float(act_revenue.sum()),
        predicted_revenue=float(pred_revenue.sum()),
        revenue_mae=float(np.mean(np.abs(pred_revenue - act_revenue))),
        revenue_pct_error=_pct_error(pred_revenue, act_revenue),
        revenue_correlation=_correlation(pred_revenue, act_revenue),
        model={**_prefixed("bgnbd", model.purchases), **_prefixed("gg", model.spend)},
    )


def _prefixed(prefix: str, fit: Fit) -> dict[str, Any]:
    return {f"{prefix}_{k}": v for k, v in fit.as_metadata().items()}


def _pct_error(predicted: np.ndarray, actual: np.ndarray) -> float:
    total = float(actual.sum())
    return float("nan") if total == 0 else 100.0 * (float(predicted.sum()) - total) / total


def _correlation(predicted: np.ndarray, actual: np.ndarray) -> float:
    if len(predicted) < 2 or np.std(predicted) == 0 or np.std(actual) == 0:
        return float("nan")
    return float(np.corrcoef(predicted, actual)[0, 1])
