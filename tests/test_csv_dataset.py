"""``dataset=csv``: a user's multivariate series, windows -> the target ``horizon`` rows ahead, split in time."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import lstm_influence as li
from lstm_influence.datasets.base import DatasetError


def write_series(path, n: int = 120, *, seed: int = 0, shuffle: bool = False) -> pd.DataFrame:
    """Two drivers and a target that follows the first with a lag of one row, plus a label column."""
    rng = np.random.default_rng(seed)
    a = np.cumsum(rng.normal(size=n))
    b = rng.normal(size=n)
    target = np.concatenate([[0.0], a[:-1]]) + 0.1 * rng.normal(size=n)
    frame = pd.DataFrame(
        {
            "t": np.arange(n),
            "a": a,
            "b": b,
            "y": target,
            "label": np.where(b > 0, "up", "down"),
        }
    )
    (frame.sample(frac=1.0, random_state=1) if shuffle else frame).to_csv(path, index=False)
    return frame


def load(path, *overrides: str):
    return li.load_dataset(li.compose(["dataset=csv", f"dataset.path={path}", *overrides]))


def test_regression_windows_targets_and_train_only_scaling(tmp_path):
    frame = write_series(tmp_path / "s.csv")
    data = load(
        tmp_path / "s.csv", "dataset.target=y", "dataset.time_column=t", "dataset.seq_len=5", "dataset.horizon=2"
    )
    # every numeric column but the time column is a feature, the target's own past included
    assert data.feature_names == ["a", "b", "y"] and data.n_features == 3 and data.seq_len == 5
    n_train = round(0.7 * 120)
    assert data.metadata["split_rows"]["train"] == [0, n_train]
    train = frame.iloc[:n_train]
    mean, std = train[["a", "b", "y"]].mean().to_numpy(), train[["a", "b", "y"]].std(ddof=0).to_numpy()
    # the first training window is rows 0..4, its target row 4 + 2 = 6, both scaled with the train block's statistics
    np.testing.assert_allclose(data.train[0][0], (frame[["a", "b", "y"]].iloc[:5].to_numpy() - mean) / std, rtol=1e-5)
    y_mean, y_std = train["y"].mean(), train["y"].std(ddof=0)
    assert data.train[1][0, 0] == pytest.approx((frame["y"].iloc[6] - y_mean) / y_std, rel=1e-5)
    # no window crosses a boundary: the last train target row is inside the train block
    assert data.spans["train"][-1, 1] == n_train - 1 and data.spans["val"][0, 0] == n_train
    assert len(data.train[0]) == n_train - 5 - 2 + 1
    # trivial predictor: the train mean (0 after scaling); references fitted on train
    assert data.baseline_loss["val"] == pytest.approx(float(np.mean(data.val[1] ** 2)), rel=1e-6)
    assert set(data.reference_losses) == {"persistence", "ridge"}
    assert data.reference_losses["ridge"]["test"] < data.baseline_loss["test"]  # y follows a: linear and learnable


def test_rows_are_ordered_by_the_time_column(tmp_path):
    write_series(tmp_path / "sorted.csv")
    write_series(tmp_path / "shuffled.csv", shuffle=True)
    common = ("dataset.target=y", "dataset.time_column=t", "dataset.seq_len=4")
    ordered, shuffled = load(tmp_path / "sorted.csv", *common), load(tmp_path / "shuffled.csv", *common)
    assert shuffled.metadata["resorted_by_time"] and not ordered.metadata["resorted_by_time"]
    np.testing.assert_array_equal(ordered.test[0], shuffled.test[0])


def test_classification_classes_baseline_and_markov_reference(tmp_path):
    frame = write_series(tmp_path / "s.csv")
    data = load(
        tmp_path / "s.csv",
        "dataset.target=label",
        "dataset.task=classification",
        "dataset.features=[a,b]",
        "dataset.seq_len=5",
    )
    assert data.is_classification and data.n_classes == 2 and data.metadata["classes"] == ["down", "up"]
    ids = (frame["label"] == "up").to_numpy().astype(int)
    assert list(data.train[1][:3]) == list(ids[5:8])  # window 0..4, target row 5
    frequencies = np.bincount(data.train[1], minlength=2) / len(data.train[1])
    by_hand = -np.mean(np.log(frequencies[data.val[1]]))
    assert data.baseline_loss["val"] == pytest.approx(by_hand, rel=1e-9)
    assert set(data.reference_losses) == {"markov"}


@pytest.mark.parametrize(
    ("edit", "overrides", "fragments"),
    [
        (None, ["dataset.target=rain"], ["dataset.target='rain'", "no such column", "'a', 'b'"]),
        (None, ["dataset.target=y", "dataset.features=[a,c]"], ["dataset.features='c'", "its columns are"]),
        ("empty", ["dataset.target=y"], ["column 'b' line 12", "is empty"]),
        ("text", ["dataset.target=y", "dataset.features=[a,b]"], ["column 'b' line 12", "'high'", "not a finite"]),
        ("constant", ["dataset.target=y", "dataset.seq_len=5"], ["dataset.target='y'", "constant"]),
        (None, ["dataset.target=y", "dataset.seq_len=20"], ["val split 18 rows", "seq_len + horizon = 20 + 1"]),
        (None, ["dataset.target=y", "dataset.horizon=0"], ["dataset.horizon=0", "positive"]),
        (None, [], ["dataset.target=null"]),
    ],
)
def test_bad_input_is_one_error_naming_the_value_and_what_is_valid(tmp_path, edit, overrides, fragments):
    frame = write_series(tmp_path / "s.csv")
    if edit == "empty":
        frame.loc[10, "b"] = None
    elif edit == "text":
        frame["b"] = frame["b"].astype(object)
        frame.loc[10, "b"] = "high"
    elif edit == "constant":
        frame["y"] = 3.0
    frame.to_csv(tmp_path / "s.csv", index=False)
    with pytest.raises(DatasetError) as info:
        load(tmp_path / "s.csv", *overrides)
    for fragment in fragments:
        assert fragment in str(info.value), str(info.value)


def test_a_missing_file_and_a_mistyped_key(tmp_path):
    with pytest.raises(DatasetError, match=r"dataset.path=.*nowhere.csv: no such file"):
        load(tmp_path / "nowhere.csv", "dataset.target=y")
    with pytest.raises(li.ConfigError, match=r"dataset.task='forecast': expected one of regression, classification"):
        load(tmp_path / "nowhere.csv", "dataset.target=y", "dataset.task=forecast")


def test_the_command_line_gives_one_error_line_exit_2_and_no_run(tmp_path):
    from tests import helpers

    write_series(tmp_path / "s.csv")
    result = helpers.cli(["dataset=csv", "dataset.path=s.csv", "dataset.target=rain"], tmp_path, timeout=300)
    assert result.returncode == 2, result.stderr[-3000:]
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "dataset.target='rain'" in errors[0] and "'a', 'b', 't'" not in errors[0]
    assert "its columns are 't', 'a', 'b', 'y', 'label'" in errors[0]
    assert "Traceback" not in result.stderr and not (tmp_path / "mlflow.db").exists()
