"""Config loading, overrides and the search space through ``optuna.trial.FixedTrial``."""

from __future__ import annotations

import optuna
import pytest

from study.config import Config, build_config, profile_cuts, profile_key, valid_fields
from study.errors import UserInputError
from study.profiles import DEFAULT_SEARCH, PROFILES
from study.runtime.request import load_config
from study.space import grid_values, suggest
from study.toml_out import config_to_toml, toml_value
from tests.messages import assert_says


def test_defaults_differ_by_device_profile() -> None:
    cpu = build_config({}, profile="cpu")
    cuda = build_config({}, profile="cuda")
    assert cpu.model.n_layers >= 1 and cuda.model.n_layers == 0  # CUDA keeps the full encoder
    assert cuda.study.n_trials > cpu.study.n_trials
    assert "model.n_layers" in cuda.search


def test_the_demo_profile_is_for_the_builtin_catalogue_only() -> None:
    demo = build_config({}, profile="cpu")
    own = build_config({}, overrides=["data.path=pairs.csv"], profile="cpu")
    assert profile_key({}, profile="cpu") == "cpu-demo" and profile_key({"data": {"path": "x"}}) == "cpu-file"
    assert (demo.data.val_fraction, demo.data.test_fraction, demo.model.n_layers) == (0.25, 0.35, 1)
    assert (own.data.val_fraction, own.data.test_fraction) == (0.2, 0.2)  # the normal split
    assert own.model.n_layers == PROFILES["cpu-file"]["model"]["n_layers"]
    # the CPU keeps the encoder frozen for a file: the architecture and the encoder's rate are not searched
    assert own.model.architecture == "frozen" and demo.model.architecture == "prior"
    assert set(own.search) == set(DEFAULT_SEARCH) - {"model.architecture", "train.encoder_lr"}
    assert "model.architecture" in demo.search
    cuts = profile_cuts({}, overrides=["data.path=pairs.csv"], profile="cpu")
    assert ("model.architecture", "frozen", "prior") in cuts
    assert profile_cuts({}, overrides=["data.path=pairs.csv", "train.epochs=6", "train.patience=3",
                                       "model.architecture=frozen", "model.match_features=true"],
                        profile="cpu") == []
    assert profile_cuts({}, profile="cpu") == []  # the demo is described in the README instead


def test_printed_toml_reads_back_as_the_same_config(tmp_path) -> None:
    odd = 'a "quoted" \\ path\twith ünïcode\x7f.csv'
    config = build_config({}, overrides=[f"data.path={toml_value(odd)}",
                                         "data.columns={query = 'search term'}",
                                         "search.model.n_layers={choices = [1, 2]}", "train.encoder_lr=3e-5"])
    path = tmp_path / "printed.toml"
    path.write_text(config_to_toml(config))
    again = load_config(path)
    assert again.to_dict() == config.to_dict() and again.data.path == odd
    assert again.training_hash() == config.training_hash()


def test_stored_configs_of_older_versions_still_load() -> None:
    from study.config import config_from_dict

    d = build_config({}).to_dict()
    d["data"]["source"], d["data"]["path"] = "synthetic", "ignored.csv"  # once silently ignored
    assert config_from_dict(d).data.builtin


def test_fixed_trial_maps_params_back_onto_the_config() -> None:
    config = build_config({}, profile="cpu")
    params = {"model.architecture": "frozen", "model.match_features": True, "train.epochs": 8,
              "train.head_lr": 2e-3, "train.loss": "ranknet", "train.weight_decay": 0.01,
              "model.dropout": 0.2, "model.prior_scale": 20.0}
    if "model.prior_scale" not in config.search:
        del params["model.prior_scale"]
    assert suggest(optuna.trial.FixedTrial(params), config.search) == params
    # the demo searches epochs for frozen trials only: a fine-tuned one keeps the profile's 3
    params = {"model.architecture": "two_tower", "model.match_features": True,
              "train.encoder_lr": 1e-4, "train.head_lr": 2e-3, "train.loss": "ranknet",
              "train.weight_decay": 0.01, "model.dropout": 0.2}
    got = suggest(optuna.trial.FixedTrial(params), config.search)
    assert got == params
    resolved = config.with_params(got)
    assert resolved.train.loss == "ranknet" and resolved.model.dropout == 0.2
    assert resolved.train.encoder_lr == 1e-4 and resolved.model.dropout == 0.2
    assert resolved.model.architecture == "two_tower" and resolved.model.match_features is True
    assert resolved.train.epochs == 3
    # parameter names are config field names
    assert set(params) <= valid_fields()


def test_fixed_trial_outside_the_space_is_rejected() -> None:
    config = build_config({"search": {"train.loss": {"choices": ["listnet", "bce"]}}})
    with pytest.raises(ValueError):
        suggest(optuna.trial.FixedTrial({"train.loss": "ranknet"}), config.search)


def test_int_and_log_ranges_suggest_the_right_types() -> None:
    space = {"model.n_layers": {"low": 1, "high": 3},
             "train.head_lr": {"low": 1e-4, "high": 1e-2, "log": True}}
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    trial = study.ask()
    params = suggest(trial, space)
    assert isinstance(params["model.n_layers"], int) and 1 <= params["model.n_layers"] <= 3
    assert isinstance(params["train.head_lr"], float) and 1e-4 <= params["train.head_lr"] <= 1e-2
    grid = grid_values(space)
    assert grid["model.n_layers"] == [1, 2, 3] and len(grid["train.head_lr"]) == 3


def test_set_override_fixes_a_searched_field() -> None:
    config = build_config({}, overrides=["train.loss=ranknet", "train.epochs=2"])
    assert config.train.loss == "ranknet" and config.train.epochs == 2
    assert "train.loss" not in config.search


def test_user_file_fields_are_not_searched_and_own_space_replaces_default(tmp_path) -> None:
    path = tmp_path / "c.toml"
    path.write_text('[train]\nloss = "bce"\n[study]\nname = "x"\n')
    config = load_config(path)
    assert config.train.loss == "bce" and "train.loss" not in config.search and config.study.name == "x"
    path.write_text('[search]\n"train.head_lr" = { low = 1e-4, high = 1e-2, log = true }\n')
    assert list(load_config(path).search) == ["train.head_lr"]


@pytest.mark.parametrize(
    ("raw", "needle"),
    [
        ({"train": {"epochz": 3}}, "epochz"),
        ({"bogus": {}}, "bogus"),
        ({"search": {"train.nope": {"low": 1, "high": 2}}}, "train.nope"),
        ({"train": {"loss": "hinge"}}, "hinge"),
        ({"sampler": {"name": "annealing"}}, "annealing"),
    ],
)
def test_bad_config_names_the_bad_key(raw, needle) -> None:
    with pytest.raises(UserInputError) as info:
        build_config(raw)
    assert_says(info.value, needle)


def test_resolved_config_round_trips_through_a_dict() -> None:
    from study.config import config_from_dict

    config = build_config({}, overrides=["train.epochs=2"])
    again = config_from_dict(config.to_dict())
    assert isinstance(again, Config) and again.to_dict() == config.to_dict()
    assert again.training_hash() == config.training_hash()


def test_fields_of_other_architectures_are_neither_sampled_nor_reported() -> None:
    import optuna

    space = {"train.encoder_lr": {"low": 1e-5, "high": 1e-3, "log": True},
             "model.pooling": {"choices": ["pair", "cls"]},
             "model.prior_scale": {"low": 5.0, "high": 30.0},
             "train.head_lr": {"low": 1e-4, "high": 1e-2, "log": True},
             "model.architecture": {"choices": ["frozen", "cross", "prior"]}}  # listed last, suggested first
    study = optuna.create_study(sampler=optuna.samplers.TPESampler(seed=0, multivariate=True, group=True,
                                                                   n_startup_trials=5))
    seen = set()
    for _ in range(15):
        trial = study.ask()
        params = suggest(trial, space)
        study.tell(trial, params.get("train.encoder_lr", 1e-4) * 1000)
        arch = params["model.architecture"]
        seen.add(arch)
        assert set(trial.params) == set(params)
        assert ("train.encoder_lr" in params) == (arch != "frozen")
        assert ("model.pooling" in params) == (arch in ("cross", "prior"))
        assert ("model.prior_scale" in params) == (arch in ("frozen", "prior"))
        assert "train.head_lr" in params
    assert seen == {"frozen", "cross", "prior"}
    # an architecture fixed by the config, not searched, decides the same way
    fixed = optuna.trial.FixedTrial({"train.head_lr": 1e-3})
    assert suggest(fixed, {k: v for k, v in space.items() if k in ("train.encoder_lr", "train.head_lr")},
                   fixed={"model.architecture": "frozen"}) == {"train.head_lr": 1e-3}
    fixed = optuna.trial.FixedTrial({"train.head_lr": 1e-3, "train.encoder_lr": 1e-4})
    assert suggest(fixed, {"train.encoder_lr": space["train.encoder_lr"]},
                   fixed={"model.architecture": "cross", "model.variant": "features"}) == {}


def test_only_for_narrows_a_field_to_some_architectures() -> None:
    import optuna

    from models.config import ARCHITECTURES
    from study import space as space_module

    assert set(space_module.ARCHITECTURES) == set(ARCHITECTURES)  # the space's copy stays true
    space = {"model.architecture": {"choices": ["frozen", "cross"]},
             "train.epochs": {"choices": [3, 8], "only_for": ["frozen"]}}
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=1))
    seen = set()
    for _ in range(12):
        trial = study.ask()
        params = suggest(trial, space)
        study.tell(trial, 0.5)
        seen.add(params["model.architecture"])
        assert ("train.epochs" in params) == (params["model.architecture"] == "frozen")
    assert seen == {"frozen", "cross"}
    # only_for narrows the built-in ONLY_FOR, never widens it: an encoder rate is never searched for frozen
    narrowed = {"train.encoder_lr": {"low": 1e-5, "high": 1e-3, "log": True, "only_for": ["frozen", "cross"]}}
    fixed = optuna.trial.FixedTrial({"train.encoder_lr": 1e-4})
    assert suggest(fixed, narrowed, fixed={"model.architecture": "frozen"}) == {}
    assert suggest(fixed, narrowed, fixed={"model.architecture": "cross"}) == {"train.encoder_lr": 1e-4}


@pytest.mark.parametrize("only_for", [[], ["bert"], "frozen"])
def test_a_bad_only_for_is_refused_naming_the_field(only_for) -> None:
    with pytest.raises(UserInputError) as info:
        build_config({"search": {"train.epochs": {"choices": [3, 8], "only_for": only_for}}})
    assert_says(info.value, "train.epochs", "only_for")
