"""BG/NBD and Gamma-Gamma (cx_pipeline/cx/clv.py): hand-worked values, parameter recovery from data simulated
with known parameters, and a backtest on simulated order histories (docs/clv.md)."""

import math

import numpy as np
import pandas as pd
import pytest
from scipy.special import hyp2f1

from cx_pipeline.cx import clv
from cx_pipeline.cx.clv import BgNbdParams, GammaGammaParams

UNIT = BgNbdParams(r=1.0, alpha=1.0, a=1.0, b=1.0)


def test_bgnbd_likelihood_worked_by_hand() -> None:
    # x = 0: L = (alpha / (alpha + T))^r = 1/2.
    # x = 1, t_x = 1, T = 3: A1 = 0, B-ratio = G(2)G(2)/(G(1)G(3)) = 1/2,
    # L = 1/2 * [(1+3)^-2 + a/(b+x-1) (1+1)^-2] = 1/2 * (1/16 + 1/4) = 0.15625.
    ll = clv.bgnbd_log_likelihood(UNIT, [0, 1], [0, 1], [1, 3])
    assert ll == pytest.approx([math.log(0.5), math.log(0.15625)], rel=1e-12)


def test_p_alive_worked_by_hand() -> None:
    # 1 / (1 + a/(b+x-1) ((alpha+T)/(alpha+t_x))^(r+x)) = 1 / (1 + (4/2)^2) = 0.2; no repeat purchase: alive.
    assert clv.bgnbd_p_alive(UNIT, [1, 0], [1, 0], [3, 5]) == pytest.approx([0.2, 1.0])


def test_expected_purchases_new_customer_worked_by_hand() -> None:
    # r = alpha = 1, a = 2, b = 1, t = 1: (a+b-1)/(a-1) [1 - (1/2) 2F1(1, 1; 2; 1/2)] and
    # 2F1(1, 1; 2; z) = -ln(1-z)/z = 2 ln 2, so E[X(1)] = 2 (1 - ln 2) = 0.613706.
    params = BgNbdParams(r=1.0, alpha=1.0, a=2.0, b=1.0)
    assert clv.bgnbd_expected_purchases_new_customer(params, 1.0) == pytest.approx(2 * (1 - math.log(2)))


def test_expected_purchases_without_dropout_is_the_nbd_rate() -> None:
    # With p ~ 0 (b huge) nobody drops out: E[Y(t)] = (r + x) / (alpha + T) * t = 2/4 * 2 = 1.
    params = BgNbdParams(r=1.0, alpha=1.0, a=2.0, b=1e7)
    assert clv.bgnbd_expected_purchases(params, 2.0, [1], [1], [3]) == pytest.approx([1.0], rel=1e-4)


def test_expected_purchases_matches_the_textbook_formula() -> None:
    # The Euler-transformed series equals FHL eq. 10 written directly (where the latter does not overflow).
    params = BgNbdParams(r=0.25, alpha=40.0, a=0.8, b=2.5)
    r, alpha, a, b = params.as_tuple()
    x, t_x, t_obs, t = np.array([0, 1, 3, 10, 60.0]), np.array([0, 30, 200, 300, 360.0]), 365.0, 365.0
    direct = (
        (a + b + x - 1)
        / (a - 1)
        * (
            1
            - ((alpha + t_obs) / (alpha + t_obs + t)) ** (r + x)
            * hyp2f1(r + x, b + x, a + b + x - 1, t / (alpha + t_obs + t))
        )
    )
    direct /= 1 + (x > 0) * a / (b + x - 1) * ((alpha + t_obs) / (alpha + t_x)) ** (r + x)
    assert clv.bgnbd_expected_purchases(params, t, x, t_x, t_obs) == pytest.approx(direct, rel=1e-9)
    # Hundreds of purchases: the textbook form overflows, the transformed one stays finite.
    assert np.isfinite(clv.bgnbd_expected_purchases(params, t, [1000], [360], [365])).all()


def test_concentrated_dropout_is_continuous_at_the_switch() -> None:
    below = BgNbdParams(r=0.45, alpha=21.5, a=0.36 * 999, b=0.64 * 999)
    above = BgNbdParams(r=0.45, alpha=21.5, a=0.36 * 1001, b=0.64 * 1001)
    args = (365.0, [0, 1, 3, 8], [0, 30, 200, 300], [100, 300, 365, 365])
    assert clv.bgnbd_expected_purchases(below, *args) == pytest.approx(
        clv.bgnbd_expected_purchases(above, *args), rel=2e-3
    )


def test_simulation_agrees_with_the_expectation_formula() -> None:
    # Mean simulated repeat purchases over T days = E[X(T)] of a new customer.
    params = BgNbdParams(r=0.5, alpha=30.0, a=0.9, b=3.0)
    frequency, _ = clv.simulate_bgnbd(params, np.full(60_000, 365.0), seed=11)
    assert frequency.mean() == pytest.approx(
        clv.bgnbd_expected_purchases_new_customer(params, 365.0), rel=0.03
    )


def test_gamma_gamma_worked_by_hand() -> None:
    # p = q = v = 1, x = 1, m = 1: G(2)/(G(1)G(1)) * 1 * 1^0 * 1^1 / (1 + 1)^2 -> log = -2 ln 2.
    unit = GammaGammaParams(p=1.0, q=1.0, v=1.0)
    assert clv.gamma_gamma_log_likelihood(unit, [1], [1.0]) == pytest.approx([-2 * math.log(2)])
    # E[value | x = 2, m = 20] = p (v + x m) / (p x + q - 1) = 2 (10 + 40) / (4 + 2) = 16.667;
    # x = 0: the population mean p v / (q - 1) = 2 * 10 / 2 = 10.
    params = GammaGammaParams(p=2.0, q=3.0, v=10.0)
    assert clv.gamma_gamma_expected_value(params, [2, 0], [20.0, 0.0]) == pytest.approx([100 / 6, 10.0])


def test_fits_recover_known_parameters() -> None:
    truth = BgNbdParams(r=0.25, alpha=40.0, a=0.8, b=2.5)
    rng = np.random.default_rng(5)
    t_obs = rng.integers(30, 731, 20_000).astype(float)
    frequency, recency = clv.simulate_bgnbd(truth, t_obs, seed=6)
    recency = np.where(frequency > 0, np.maximum(np.round(recency), 1), 0)  # whole days, as in the data
    fit = clv.fit_bgnbd(frequency, recency, t_obs)
    assert fit.converged
    for name, expected in zip(("r", "alpha", "a", "b"), truth.as_tuple(), strict=True):
        assert getattr(fit.params, name) == pytest.approx(expected, rel=0.2), name

    # Gamma-Gamma on 20 000 repeat buyers with 1-10 repeat purchases each.
    spend_truth = GammaGammaParams(p=6.0, q=4.0, v=15.0)
    repeat_purchases = rng.integers(1, 11, 20_000)
    monetary = clv.simulate_gamma_gamma(spend_truth, repeat_purchases, seed=7)
    spend = clv.fit_gamma_gamma(repeat_purchases, monetary)
    assert spend.converged
    for name in ("p", "q", "v"):
        assert getattr(spend.params, name) == pytest.approx(getattr(spend_truth, name), rel=0.15), name
    assert spend.params.population_mean_value == pytest.approx(spend_truth.population_mean_value, rel=0.05)


def test_summarise_orders_worked_by_hand() -> None:
    orders = pd.DataFrame(
        {
            "customer_id": ["A", "A", "A", "A", "B", "B"],
            "ordered_at": pd.to_datetime(
                [
                    "2025-01-01 09:00",
                    "2025-01-01 18:00",  # same day: one purchase worth 15
                    "2025-01-11 10:00",
                    "2025-01-31 10:00",
                    "2025-01-21 10:00",
                    "2025-03-01 10:00",  # after the observation end: ignored
                ],
                utc=True,
            ),
            "net_revenue": [10.0, 5.0, 20.0, 30.0, 7.0, 99.0],
        }
    )
    summary = clv.summarise_orders(orders, "2025-02-10 12:00:00+00:00").set_index("customer_id")
    # A: purchase days 01-01, 01-11, 01-31 -> x = 2, t_x = 30, T = 40, m = mean(20, 30) = 25.
    assert summary.loc[
        "A", ["frequency", "recency", "T", "monetary", "orders", "historical_clv"]
    ].tolist() == [
        2,
        30,
        40,
        25,
        4,
        65,
    ]
    # B: a single purchase -> x = 0, t_x = 0, T = 20, m = 0.
    assert summary.loc[
        "B", ["frequency", "recency", "T", "monetary", "orders", "historical_clv"]
    ].tolist() == [
        0,
        0,
        20,
        0,
        1,
        7,
    ]


def test_predict_clv_is_purchases_times_value() -> None:
    summary = pd.DataFrame(
        {"customer_id": ["a", "b"], "frequency": [2.0, 0.0], "recency": [30.0, 0.0], "T": [40.0, 20.0],
         "monetary": [25.0, 0.0], "orders": [3, 1], "historical_clv": [65.0, 7.0]}
    )  # fmt: skip
    model = clv.ClvModel(
        purchases=clv.Fit(BgNbdParams(0.5, 30.0, 0.9, 3.0), 0.0, 2, True, ""),
        spend=clv.Fit(GammaGammaParams(2.0, 3.0, 10.0), 0.0, 1, True, ""),
    )
    predicted = clv.predict_clv(summary, model, horizon_days=365)
    assert predicted["predicted_clv"].tolist() == pytest.approx(
        (predicted["expected_purchases"] * predicted["expected_avg_order_value"]).tolist()
    )
    # b has no repeat purchase: the population mean value 2 * 10 / (3 - 1) = 10 and p_alive = 1.
    assert predicted.loc[1, ["expected_avg_order_value", "p_alive"]].tolist() == pytest.approx([10.0, 1.0])


def _simulated_orders(
    params: BgNbdParams, spend: GammaGammaParams, customers: int, seed: int
) -> pd.DataFrame:
    """Order histories drawn from BG/NBD x Gamma-Gamma: first purchases spread over the first year, then a
    Poisson process with dropout after each repeat purchase, up to the end of the second year."""
    rng = np.random.default_rng(seed)
    start = pd.Timestamp("2024-01-01", tz="UTC")
    horizon = 730.0
    birth = rng.uniform(0, 365, customers)
    rate = rng.gamma(params.r, 1 / params.alpha, customers)
    dropout = rng.beta(params.a, params.b, customers)
    nu = rng.gamma(spend.q, 1 / spend.v, customers)
    rows = []
    for i in range(customers):
        clock = birth[i]
        rows.append((f"c{i}", clock, rng.gamma(spend.p, 1 / nu[i])))  # the first purchase
        while True:
            clock += rng.exponential(1 / rate[i])
            if clock > horizon:
                break
            rows.append((f"c{i}", clock, rng.gamma(spend.p, 1 / nu[i])))
            if rng.random() < dropout[i]:  # dropout right after a repeat purchase
                break
    frame = pd.DataFrame(rows, columns=["customer_id", "day", "net_revenue"])
    frame["ordered_at"] = start + pd.to_timedelta(frame["day"], unit="D")
    return frame.drop(columns="day")


def test_backtest_on_simulated_histories() -> None:
    orders = _simulated_orders(
        BgNbdParams(0.6, 25.0, 0.7, 3.0), GammaGammaParams(5.0, 4.0, 60.0), 4000, seed=3
    )
    result = clv.backtest(orders, "2025-12-31", holdout_months=6)
    assert result.n_customers > 3000
    assert abs(result.purchases_pct_error) < 12
    assert abs(result.revenue_pct_error) < 15
    assert result.purchases_correlation > 0.5
    assert result.purchases_mae < 1.5


def test_fit_rejects_impossible_inputs() -> None:
    with pytest.raises(ValueError):
        clv.fit_bgnbd([], [], [])
    with pytest.raises(ValueError):
        clv.fit_bgnbd([1], [5], [3])  # last purchase after the end of observation
    with pytest.raises(ValueError):
        clv.fit_gamma_gamma([0, 0], [0.0, 0.0])
