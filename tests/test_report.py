"""The CX report (cx_pipeline/cx/charts.py, report.py, report_data.py): chart functions on hand-made data,
the data loader on a hand-made warehouse, and the rendered report in a real headless browser (Debian's
chromium)."""

import json
import os
import re
import shutil
import subprocess
import tempfile
import xml.etree.ElementTree as ET
from pathlib import Path

import duckdb
import pytest

from cx_pipeline.cx import charts, report
from cx_pipeline.cx.charts import LineSeries
from cx_pipeline.cx.report import KeyNumber, ReportData, SurveyMonth
from cx_pipeline.cx.report_data import ces_from_sum, csat_from_counts, load_report_data, nps_from_counts

SVG = "{http://www.w3.org/2000/svg}"
CHROMIUM = "/usr/bin/chromium"


def _svg(markup: str) -> ET.Element:
    root = ET.fromstring(markup)
    assert root.tag == f"{SVG}svg"
    assert float(root.get("width")) > 0 and float(root.get("height")) > 0
    return root


def _by_class(root: ET.Element, tag: str, css_class: str) -> list[ET.Element]:
    return [e for e in root.iter(f"{SVG}{tag}") if e.get("class") == css_class]


def test_formula_helpers_worked_by_hand() -> None:
    # 3 promoters, 1 detractor of 5: 100 * (3 - 1) / 5 = 40; 2 of 3 satisfied = 66.67 %; 14 / 3 = 4.667.
    assert nps_from_counts(3, 1, 5) == 40.0
    assert csat_from_counts(2, 3) == 66.67
    assert ces_from_sum(14, 3) == 4.667
    assert nps_from_counts(0, 0, 0) is None


def test_nice_ticks_and_histogram() -> None:
    assert charts.nice_ticks(0, 100, 4) == [0, 25, 50, 75, 100]
    assert charts.nice_ticks(-100, 100, 4) == [-100, -50, 0, 50, 100]
    edges, counts = charts.histogram(list(range(10)), bins=5, upper_quantile=1.0)
    assert edges == pytest.approx([0, 1.8, 3.6, 5.4, 7.2, 9.0])
    assert counts == [2, 2, 2, 2, 2]
    # The top 1 % goes into the last bin instead of stretching the axis.
    edges, counts = charts.histogram([*range(99), 10_000], bins=10)
    assert edges[-1] == 98 and counts[-1] == 11 and sum(counts) == 100


def test_bar_chart_scales_and_escapes() -> None:
    root = _svg(charts.bar_chart([("<b>a</b>", 10), ("b", 5)], label="Bars & more"))
    bars = _by_class(root, "rect", "bar")
    assert len(bars) == 2
    assert float(bars[0].get("width")) == pytest.approx(2 * float(bars[1].get("width")))
    texts = [t.text for t in root.iter(f"{SVG}text")]
    assert "<b>a</b>" in texts  # escaped in the markup, parsed back as text


def test_line_chart_marks_low_samples_hollow() -> None:
    series = LineSeries("NPS", [10.0, None, 30.0], "#123456", [True, False, False])
    root = _svg(
        charts.line_chart(["2025-01", "2025-02", "2025-03"], [series], label="NPS", counts=[5, 0, 50])
    )
    points = _by_class(root, "circle", "point")
    assert [p.get("fill") for p in points] == ["#ffffff", "#123456"]  # no point for the month without data
    assert len(_by_class(root, "rect", "count-bar")) == 3


def test_heatmap_and_flow_chart() -> None:
    root = _svg(
        charts.heatmap(["2025-01", "2025-02"], ["0", "1"], [[1.0, 0.5], [1.0, None]], label="Retention")
    )
    assert len(_by_class(root, "rect", "cell")) == 3
    flows = [("(new)", "discovery", 10), ("discovery", "consideration", 6), ("loyalty", "lapsed", 2)]
    root = _svg(charts.flow_chart(flows, label="Flow"))
    paths = _by_class(root, "path", "flow")
    assert len(paths) == 3
    widths = sorted(float(p.get("stroke-width")) for p in paths)
    assert widths[2] / widths[0] == pytest.approx(5.0, rel=0.01)  # bands as wide as their counts


def sample_report_data() -> ReportData:
    """A small, hand-made report: every chart has something to draw."""
    months = [f"2025-{m:02d}-01" for m in range(1, 13)]
    return ReportData(
        as_of="2025-12-31 23:59:59 UTC",
        key_numbers=[
            KeyNumber("NPS", "42.0", "120 answers"),
            KeyNumber("Churn rate", "3.1%", "month of 2025-11"),
        ],
        stage_customers=[
            ("discovery", 50),
            ("consideration", 30),
            ("decision", 12),
            ("loyalty", 20),
            ("lapsed", 8),
        ],
        funnel=[("discovery", 120), ("consideration", 70), ("decision", 40), ("loyalty", 28), ("lapsed", 8)],
        stage_flows=[
            ("(new)", "discovery", 120),
            ("discovery", "consideration", 70),
            ("consideration", "decision", 40),
            ("decision", "loyalty", 28),
            ("loyalty", "lapsed", 8),
            ("lapsed", "loyalty", 2),
        ],
        survey_trend=[
            SurveyMonth(m, 10.0 + i * 3, 20 + i * 5, 60.0 + i, 10 + i * 4, 4.0 + i / 10, 8 + i * 3)
            for i, m in enumerate(months)
        ],
        low_sample_threshold=30,
        retention=[
            (c, k, 1.0 if k == 0 else 0.5 / k, 40) for i, c in enumerate(months[:6]) for k in range(12 - i)
        ],
        touchpoints=[
            {
                "touchpoint_type": "page_view",
                "channel": "web",
                "touchpoints": 1000,
                "customers_reached": 300,
                "conversion_rate": 0.2,
                "friction_rate": 0.3,
                "support_contact_rate": 0.05,
                "rejection_rate": 0.2,
                "abandoned_cart_rate": 0.1,
                "follow_up_nps": 35.0,
                "follow_up_nps_responses": 80,
            },
            {
                "touchpoint_type": "support_ticket",
                "channel": "chat",
                "touchpoints": 40,
                "customers_reached": 35,
                "conversion_rate": 0.4,
                "friction_rate": 0.5,
                "tied_csat": 70.0,
                "tied_csat_responses": 25,
                "tied_ces": 5.5,
                "tied_ces_responses": 20,
                "tied_nps": -10.0,
                "tied_nps_responses": 12,
            },
        ],
        churn=[(m, None if i == 0 else 0.02 + i / 200, 100 + i * 10, 2 + i) for i, m in enumerate(months)],
        churn_risk_scores=[i / 100 for i in range(100)],
        churn_risk_bands=[("low", 30), ("medium", 40), ("high", 30)],
        clv_predicted=[float(i % 37) * 7.5 for i in range(200)],
        clv_historical=[float(i % 23) * 12.0 for i in range(200)],
        backtest={
            "n_customers": 150,
            "calibration_end": "2025-06-30",
            "observation_end": "2025-12-31",
            "holdout_days": 184,
            "predicted_purchases": 120.0,
            "actual_purchases": 110.0,
            "purchases_pct_error": 9.1,
            "purchases_mae": 0.5,
            "purchases_correlation": 0.7,
            "predicted_revenue": 9000.0,
            "actual_revenue": 8500.0,
            "revenue_pct_error": 5.9,
            "revenue_mae": 40.0,
            "revenue_correlation": 0.6,
        },
        rfm_segments=[("champions", 20, 700.0), ("loyal", 25, 400.0), ("new", 15, 90.0), ("lost", 10, 60.0)],
    )


def test_rendered_report_is_self_contained() -> None:
    html = report.render_report(sample_report_data())
    assert html.startswith("<!DOCTYPE html>")
    assert "<script" not in html and "<link" not in html and "<img" not in html
    # Nothing fetched from the network: the only URL is the SVG namespace.
    assert set(re.findall(r"https?://[^\"' )]+", html)) == {"http://www.w3.org/2000/svg"}
    svgs = re.findall(r"<svg .*?</svg>", html, flags=re.S)
    assert len(svgs) >= 12
    for markup in svgs:
        _svg(markup)
    assert "*" in html  # low-sample scores are marked in the touchpoint table


# --------------------------------------------------------------------------------------------------------
# The data loader on a hand-made warehouse
# --------------------------------------------------------------------------------------------------------


def test_load_report_data_from_marts() -> None:
    conn = duckdb.connect()
    conn.execute("set TimeZone = 'UTC'")
    conn.execute("create schema marts")
    conn.execute(
        """
        create table marts.fct_cx_metrics_monthly as select * from (values
            (date '2024-11-01', 10, 10, 0, 0, 0, 0),
            (date '2025-01-01', 5, 3, 1, 4, 3, 18),
            (date '2025-01-01', 5, 1, 1, 2, 1, 10),
            (date '2025-02-01', 0, 0, 0, 2, 2, 12)
        ) t(
            month, nps_responses, nps_promoters, nps_detractors, csat_responses, csat_satisfied, ces_score_sum
        )
        """
    )
    conn.execute("alter table marts.fct_cx_metrics_monthly add column ces_responses bigint")
    conn.execute("update marts.fct_cx_metrics_monthly set ces_responses = csat_responses")
    conn.execute(
        """
        create table marts.fct_journey_stage_history as select * from (values
            ('c1', 'discovery', 1, null, timestamptz '2024-10-01', false),
            ('c1', 'decision', 3, 'discovery', timestamptz '2024-12-01', false),
            ('c1', 'lapsed', 5, 'decision', timestamptz '2025-02-01', true),
            ('c2', 'discovery', 1, null, timestamptz '2025-01-05', true)
        ) t(customer_id, journey_stage, stage_order, previous_stage, valid_from, is_current)
        """
    )
    conn.execute(
        "create table marts.fct_customer_rfm as select 'c1' as customer_id, 'lost' as rfm_segment, "
        "100.0 as historical_clv, timestamptz '2025-02-15 12:00:00' as as_of_at"
    )
    conn.execute(
        "create table marts.fct_retention_cohorts as select date '2024-12-01' as cohort_month, "
        "0 as months_since_first_order, 1.0 as retention_rate, 1 as cohort_customers"
    )
    conn.execute(
        "create table marts.fct_touchpoint_cx as select 'order' as touchpoint_type, 'web' as channel"
    )
    conn.execute(
        """
        create table marts.fct_churn_monthly as select * from (values
            (date '2025-01-01', 0.0, 1, 0, false),
            (date '2025-02-01', 1.0, 1, 1, true)
        ) t(month, churn_rate, active_customers_at_start, churned_customers, is_partial_month)
        """
    )
    conn.execute(
        "create table marts.fct_customer_churn_risk as select 'c1' as customer_id, 0.7 as churn_risk_score, "
        "'high' as churn_risk_band"
    )
    data = load_report_data(conn, low_sample_threshold=30)

    # Key numbers over the 12 months up to as_of (2024-03 .. 2025-02): all three months count.
    # NPS: (10 + 3 + 1 promoters - 0 - 1 - 1 detractors) / 20 = 60; CSAT 6 of 8 = 75; CES 40 / 8 = 5.
    assert data.metrics["nps_last_12_months"] == 60.0
    assert data.metrics["csat_last_12_months"] == 75.0
    assert data.metrics["ces_last_12_months"] == 5.0
    assert data.metrics["churn_rate_last_complete_month"] == 0.0  # February is partial
    assert data.metrics["customers_per_stage"] == {
        "discovery": 1, "consideration": 0, "decision": 0, "loyalty": 0, "lapsed": 1,
    }  # fmt: skip
    # January: 2 months rows rolled up: NPS (3 + 1 - 1 - 1) / 10 = 20.
    january = next(m for m in data.survey_trend if m.month == "2025-01-01")
    assert (january.nps, january.nps_responses, january.csat, january.ces) == (20.0, 10, 66.67, 4.667)
    assert dict((s, n) for s, n in data.funnel) == {
        "discovery": 2, "consideration": 1, "decision": 1, "loyalty": 0, "lapsed": 1,
    }  # fmt: skip
    assert sorted(data.stage_flows) == [
        ("(new)", "discovery", 2), ("decision", "lapsed", 1), ("discovery", "decision", 1),
    ]  # fmt: skip
    assert data.clv_predicted == [] and data.backtest is None  # no CLV asset yet
    report.render_report(data)  # renders with empty CLV charts


# --------------------------------------------------------------------------------------------------------
# A real browser
# --------------------------------------------------------------------------------------------------------

# Appended to a copy of the report in the test only: writes each <svg>'s rendered size into the DOM, which
# `--dump-dom` then prints. The report itself carries no script.
MEASURE_SCRIPT = """
<script>
document.body.insertAdjacentHTML('beforeend', '<pre id="svg-sizes">' + JSON.stringify(
  Array.from(document.querySelectorAll('svg')).map(function (s) {
    var r = s.getBoundingClientRect();
    return {label: s.getAttribute('aria-label'), width: r.width, height: r.height,
            marks: s.querySelectorAll('rect,circle,path,polyline').length};
  })) + '</pre>');
</script>
"""


def ensure_chromium() -> str:
    """Debian's chromium, installed with apt-get when absent (idempotent); skips only if apt itself fails."""
    if Path(CHROMIUM).exists():
        return CHROMIUM
    if shutil.which("apt-get") is None:
        pytest.skip("chromium is not installed and apt-get is not available to install it")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for command in (
        ["apt-get", "update"],
        ["apt-get", "install", "-y", "--no-install-recommends", "chromium"],
    ):
        result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=900, check=False)
        if result.returncode != 0:
            pytest.skip(f"could not install chromium with apt ({' '.join(command)}): {result.stderr[-500:]}")
    if not Path(CHROMIUM).exists():
        pytest.skip("apt-get installed chromium but /usr/bin/chromium is missing")
    return CHROMIUM


def _chromium(browser: str, *args: str) -> subprocess.CompletedProcess[str]:
    with tempfile.TemporaryDirectory(prefix="cx360-chromium-") as profile:
        command = [
            browser,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
            f"--user-data-dir={profile}",
            *args,
        ]
        return subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)


@pytest.mark.xdist_group("chromium")
def test_report_renders_in_headless_chromium(tmp_path: Path) -> None:
    browser = ensure_chromium()
    html = report.render_report(sample_report_data())
    page = tmp_path / "cx_report.html"
    page.write_text(html, encoding="utf-8")

    measured = tmp_path / "measured.html"
    measured.write_text(html.replace("</body>", MEASURE_SCRIPT + "</body>"), encoding="utf-8")
    dom = _chromium(browser, "--window-size=1400,1000", "--dump-dom", measured.as_uri())
    assert dom.returncode == 0, dom.stderr[-2000:]
    # The last match: the first one is the script's own source text.
    found = re.findall(r'<pre id="svg-sizes">(.*?)</pre>', dom.stdout, flags=re.S)
    assert found and found[-1].startswith("["), "the browser did not run the measuring script"
    sizes = json.loads(found[-1].replace("&quot;", '"').replace("&amp;", "&"))
    expected = len(re.findall(r"<svg ", html))
    assert len(sizes) == expected >= 12
    for svg in sizes:
        assert svg["width"] > 50 and svg["height"] > 50, svg
        assert svg["marks"] > 0, svg

    screenshot = tmp_path / "cx_report.png"
    shot = _chromium(browser, "--window-size=1400,5200", f"--screenshot={screenshot}", page.as_uri())
    assert shot.returncode == 0, shot.stderr[-2000:]
    assert screenshot.exists() and screenshot.stat().st_size > 50_000
    keep = os.environ.get("CX360_REPORT_SCREENSHOT")
    if keep:  # e.g. CX360_REPORT_SCREENSHOT=/tmp/cx_report.png to look at it
        shutil.copy(screenshot, keep)
