"""The report's page details on real studies built with Optuna (this tool's attributes, no training): where
``--out`` writes, the slices fit the page, importances carry a caveat with few trials, integer epochs and
grades, and the dashboard's speed chart colours only by a searched parameter."""

from __future__ import annotations

import datetime as dt
import json
import re

import numpy as np
import optuna
import pytest
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.trial import TrialState, create_trial

from study.cli import main
from study.dashboard.artifacts import best_histogram, speed_figure
from study.dashboard.note import study_note
from study.report.build import build_report, report_path
from study.report.html import grade, number
from study.report.search import learning_curves, search_sections
from tests.messages import assert_says

SPACE = {"train.head_lr": FloatDistribution(1e-4, 1e-2, log=True), "model.dropout": FloatDistribution(0, 0.3),
         "train.weight_decay": FloatDistribution(0, 0.1), "train.epochs": IntDistribution(1, 3),
         "train.loss": CategoricalDistribution(["listnet", "ranknet"])}


def make_study(n_complete: int, *, storage: str | None = None, seed: int = 0) -> optuna.Study:
    """``n_complete`` complete trials over five searched parameters and one pruned trial, each with its
    curve."""
    rng = np.random.default_rng(seed)
    study = optuna.create_study(study_name="five", storage=storage, direction="maximize")
    study.set_metric_names(["ndcg@10"])
    start = dt.datetime(2026, 1, 1)
    for i in range(n_complete + 1):
        params = {"train.head_lr": float(10 ** rng.uniform(-4, -2)),
                  "model.dropout": float(rng.uniform(0, 0.3)),
                  "train.weight_decay": float(rng.uniform(0, 0.1)), "train.epochs": int(rng.integers(1, 4)),
                  "train.loss": str(rng.choice(["listnet", "ranknet"]))}
        curve = {e: float(0.8 + 0.02 * e + rng.normal(0, 0.01)) for e in range(params["train.epochs"] + 1)}
        pruned = i == n_complete
        trial = create_trial(state=TrialState.PRUNED if pruned else TrialState.COMPLETE,
                             value=None if pruned else max(curve.values()), params=params,
                             distributions=SPACE, intermediate_values=curve,
                             user_attrs={"epochs_run": params["train.epochs"]})
        trial.datetime_start = start + dt.timedelta(minutes=i)
        trial.datetime_complete = start + dt.timedelta(minutes=i, seconds=40)
        study.add_trial(trial)
    return study


def test_report_path_puts_the_report_in_a_folder_given_as_a_folder(tmp_path) -> None:
    assert report_path(None, "shoes") == report_path("", "shoes") == tmp_path.__class__("reports/shoes.html")
    assert report_path(f"{tmp_path}/new/", "shoes") == tmp_path / "new" / "shoes.html"
    assert report_path(str(tmp_path), "shoes") == tmp_path / "shoes.html"  # an existing folder
    assert report_path(str(tmp_path / "r.html"), "shoes") == tmp_path / "r.html"


def test_study_report_out_folder_writes_name_html(tmp_path, capsys) -> None:
    storage = f"sqlite:///{tmp_path / 'studies.db'}"
    make_study(3, storage=storage)
    out = tmp_path / "reports"
    assert main(["report", "--name", "five", "--storage", storage, "--out", f"{out}/",
                 "--device", "cpu"]) == 0
    assert (out / "five.html").is_file()
    assert_says(capsys.readouterr().out, "five.html")
    assert main(["report", "--name", "five", "--storage", storage, "--out", str(tmp_path),
                 "--device", "cpu"]) == 0
    assert (tmp_path / "five.html").is_file()


def _section(sections, anchor: str) -> str:
    return next(s.body for s in sections if s.anchor == anchor)


def test_slices_of_five_parameters_fit_the_page(tmp_path) -> None:
    sections = search_sections(make_study(12))
    slices = _section(sections, "slices")
    assert slices.count('class="plotly-graph-div"') == 2  # three parameters, then two
    assert not re.search(r'"width":\s*\d{3,}', slices)  # no fixed width (Optuna's: 300 px a parameter)
    assert all(name in slices for name in SPACE)


def test_importances_carry_a_caveat_below_ten_complete_trials() -> None:
    few = _section(search_sections(make_study(6)), "importances")
    assert 'class="caveat"' in few and "Only 6 complete trials" in few and "plotly-graph-div" in few
    enough = _section(search_sections(make_study(12)), "importances")
    assert 'class="caveat"' not in enough and "plotly-graph-div" in enough


def test_parallel_coordinates_say_what_a_none_line_means_for_conditional_parameters() -> None:
    flat = _section(search_sections(make_study(6)), "parallel")
    assert "plotly-graph-div" in flat and "did not use that parameter" not in flat  # every trial has all
    study = optuna.create_study(direction="maximize")
    dists = {"model.architecture": CategoricalDistribution(["frozen", "cross"]),
             "train.encoder_lr": FloatDistribution(1e-5, 1e-3, log=True),
             "model.dropout": SPACE["model.dropout"]}
    for i in range(6):
        arch = ["frozen", "cross"][i % 2]
        params = {"model.architecture": arch, "model.dropout": i / 30,
                  **({"train.encoder_lr": 5e-5 * (i + 1)} if arch == "cross" else {})}
        study.add_trial(create_trial(value=0.9 + i / 100, params=params,
                                     distributions={k: dists[k] for k in params}))
    conditional = _section(search_sections(study), "parallel")
    assert_says(conditional, "A line at None did not use that parameter: conditional parameters "
                "(train.encoder_lr) are sampled only by the architectures that use them.")


def test_learning_curves_have_integer_epoch_ticks() -> None:
    study = make_study(4)
    fig, n = learning_curves(study, sorted(study.trials[:4], key=lambda t: -t.values[0]), "ndcg@10")
    assert n == 5 and fig.layout.xaxis.dtick == 1 and fig.layout.xaxis.tickmode == "linear"
    assert all(float(x).is_integer() for trace in fig.data for x in trace.x)
    dotted = [trace.line.dash for trace in fig.data if trace.name == "trial 4"]
    assert dotted == ["dot"]  # the pruned trial


def test_numbers_and_grades_print_as_a_reader_wants_them() -> None:
    assert [grade(g) for g in (3, 3.0, np.float64(2.0), 2.3333333, 0.0)] == ["3", "3", "2", "2.33", "0"]
    assert [number(v) for v in (True, 0.008676150785, 2, 1.0, "listnet")] == ["true", "0.00868", "2", "1",
                                                                              "listnet"]


def test_the_overview_shows_durations_and_integer_parameters(tmp_path) -> None:
    page = build_report(make_study(3), out=tmp_path / "r.html").read_text()
    overview = page.split('id="overview"')[1].split("<section")[0]
    assert "<td>40 s</td>" in overview and "<th>time</th>" in overview
    assert "<td>1.0</td>" not in overview and "<td>3.0</td>" not in overview  # train.epochs as integers


def test_the_speed_chart_colours_by_a_searched_parameter_only() -> None:
    fixed = [(0, 0.8, 900.0, {"train.head_lr": 1e-3}), (1, 0.82, 850.0, {"train.head_lr": 2e-3})]
    fig = speed_figure(fixed, "ndcg@10")
    assert "n_layers" not in json.dumps(fig.to_plotly_json()) and fig.data[0].marker.showscale is not True
    searched = [(0, 0.8, 900.0, {"model.n_layers": 2}), (1, 0.82, 450.0, {"model.n_layers": 6})]
    fig = speed_figure(searched, "ndcg@10")
    assert list(fig.data[0].marker.color) == [2, 6] and fig.data[0].marker.colorbar.title.text == "n_layers"
    by_choice = [(0, 0.8, 900.0, {"model.architecture": "two_tower"}),
                 (1, 0.8, 300.0, {"model.architecture": "cross"})]
    marker = speed_figure(by_choice, "ndcg@10").data[0].marker
    assert list(marker.color) == [1, 0] and list(marker.colorbar.ticktext) == ["cross", "two_tower"]


def test_the_dashboard_histogram_counts_queries_in_whole_numbers() -> None:
    few = best_histogram(np.array([0.5, 0.9, 0.95, np.nan]), 3, "ndcg@10")
    assert few.layout.yaxis.dtick == 1 and few.layout.yaxis.tickmode == "linear"
    many = best_histogram(np.full(50, 0.9), 3, "ndcg@10")
    assert many.layout.yaxis.tickformat == "d" and many.layout.yaxis.dtick is None


def test_the_dashboard_note_prints_integer_grades_as_integers() -> None:
    summary = {"name": "hd", "label_counts": {"1.0": 3, "2.3333333": 1, "3.0": 4}}
    note = study_note(make_study(1), summary, {"study": {"metric": "ndcg@10"}})
    assert "- labels: 1: 3, 2.33: 1, 3: 4" in note


@pytest.mark.parametrize("n_complete", [0, 1])
def test_a_study_with_almost_nothing_still_gets_a_report(tmp_path, n_complete) -> None:
    page = build_report(make_study(n_complete), out=tmp_path / "r.html").read_text()
    assert "Not drawn" in page and 'id="timeline"' in page
