"""The report of a study with a second objective (two values per trial, a Pareto front): created by this tool
(``create_or_resume`` with ``study.second_objective``), its trials told two values and carrying the user
attributes the objective writes, then reported."""

from __future__ import annotations

import numpy as np
import optuna
import pytest
from optuna.trial import TrialState

from study.report.build import build_report
from study.runtime.attrs import set_trial_attr
from study.runtime.request import load_config
from study.runtime.studies import create_or_resume
from study.runtime.trials import best_trial
from study.space import suggest


def two_objective_study(study_toml, second: str, n_trials: int = 12) -> optuna.Study:
    path = study_toml(tail='"model.dropout" = { low = 0.0, high = 0.3 }\n')
    config = load_config(path, overrides=[f"study.second_objective={second}"])
    study = create_or_resume(config, fingerprint="f", summary={})
    rng = np.random.default_rng(0)
    for number in range(n_trials):
        trial = study.ask()
        suggest(trial, config.search)
        curve = [{"epoch": e, "ndcg@10": round(0.7 + 0.05 * e + float(rng.normal(0, 0.01)), 6)}
                 for e in range(3)]
        set_trial_attr(trial, "curve", curve)  # a trial with two objectives cannot report intermediate values
        trial.set_user_attr("epochs_run", 2)
        if number == 5:
            study.tell(trial, state=TrialState.PRUNED)
            continue
        ndcg = max(c["ndcg@10"] for c in curve)
        cost = float(rng.uniform(1, 20))
        trial.set_user_attr("val_metrics", {"ndcg@10": ndcg})
        study.tell(trial, [ndcg, cost])
    return study


@pytest.mark.parametrize("second", ["latency", "model_size"])
def test_the_report_of_a_two_objective_study_draws_its_pareto_front(tmp_path, study_toml, second) -> None:
    study = two_objective_study(study_toml, second)
    assert len(study.directions) == 2 and len(study.metric_names) == 2
    with pytest.raises(RuntimeError):
        study.best_trial  # noqa: B018 - what the report must never ask of a two-objective study
    page = build_report(study, out=tmp_path / "report.html").read_text()
    search = page.split('id="ranking"')[0]
    assert 'id="pareto"' in search and "Not drawn" not in search
    pareto = search.split('id="pareto"')[1].split("<section")[0]
    assert study.metric_names[1] in pareto and 'class="plotly-graph-div"' in pareto
    curves = search.split('id="intermediate"')[1].split("<section")[0]
    assert "plotly-graph-div" in curves and "12 in all" in curves  # drawn from the stored per-epoch curves
    overview = page.split('id="overview"')[1].split("<section")[0]
    assert f"<th>{study.metric_names[1]}</th>" in overview and "(a Pareto front)" in overview
    best = best_trial(study)
    assert f"Best trial <b>{best.number}</b>" in page  # the highest NDCG on the front, not study.best_trial
    # history, Pareto, importances, parallel, slices, curves, timeline
    assert page.count('class="plotly-graph-div"') >= 7
