"""Prediction input: read records from JSON or CSV, check them, build the model's DataFrame.

The check happens once, here, against `schemas/prediction-input.schema.json`, so every
problem is reported as `record N: field ...` before any model is loaded.
"""

from __future__ import annotations

import csv
import json
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from accident_prediction.errors import InputError
from accident_prediction.features import FEATURES

if TYPE_CHECKING:
    import pandas as pd

# A symlink to schemas/ at the repository root, so the package carries the contract file.
SCHEMA_FILE = Path(__file__).parent / "schemas" / "prediction-input.schema.json"
_MAX_REPORTED = 20  # enough to fix a file; a 10,000-row CSV with one bad column stays readable
_JSON_TYPE = {"integer": "an integer", "number": "a number", "string": "a string"}


def repo_file(relative: str) -> Path:
    """`relative` under the working directory if it exists there, else under the source checkout."""
    here = Path(relative)
    if here.exists():
        return here
    # workload/src/accident_prediction/inputs.py -> repository root (editable installs, CI)
    return Path(__file__).resolve().parents[3] / relative


@cache
def input_schema() -> dict[str, Any]:
    """The prediction-input JSON Schema (draft 2020-12)."""
    with SCHEMA_FILE.open(encoding="utf-8") as fh:
        schema: dict[str, Any] = json.load(fh)
    return schema


def load_records(path: Path) -> list[dict[str, Any]]:
    """Read and check the records of a `.json` (one record or a list) or `.csv` file."""
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    if path.suffix.lower() == ".csv":
        records, lines = _read_csv(path)
    else:
        records, lines = _read_json(path), None
    check_records(records, where=str(path), csv_lines=lines)
    return records


def check_records(
    records: list[dict[str, Any]], where: str = "input", csv_lines: list[int] | None = None
) -> None:
    """Raise InputError naming every bad record and field (up to a readable limit)."""
    from jsonschema import Draft202012Validator

    if not records:
        raise InputError(f"{where}: no records")
    validator = Draft202012Validator(input_schema()["$defs"]["record"])
    problems: list[str] = []
    for index, record in enumerate(records):
        label = f"record {index}" + (f" (line {csv_lines[index]})" if csv_lines else "")
        if not isinstance(record, dict):
            problems.append(f"{label}: expected an object of features, got {_show(record)}")
            continue
        problems.extend(f"{label}: {text}" for text in _record_problems(validator, record))
    if problems:
        shown = problems[:_MAX_REPORTED]
        if len(problems) > _MAX_REPORTED:
            shown.append(f"... and {len(problems) - _MAX_REPORTED} more problems")
        raise InputError(f"{where}: invalid input\n  " + "\n  ".join(shown))


def to_frame(records: list[dict[str, Any]]) -> pd.DataFrame:
    """The model's input: exactly FEATURES, in order, with the dtypes of the training frame."""
    import pandas as pd

    frame = pd.DataFrame.from_records(records, columns=list(FEATURES))
    for column, kind in FEATURES.items():
        # JSON allows 30.0 for an integer; the model signature (long) does not.
        if kind == "int":
            frame[column] = frame[column].astype("int64")
        elif kind == "float":
            frame[column] = frame[column].astype("float64")
        else:
            frame[column] = frame[column].astype(str)
    return frame


def _read_json(path: Path) -> list[dict[str, Any]]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise InputError(
            f"{path}: not valid JSON (line {exc.lineno}, column {exc.colno}): {exc.msg}"
        ) from None
    except UnicodeDecodeError:
        raise InputError(f"{path}: not a UTF-8 text file") from None
    if isinstance(data, dict):
        return [data]
    if isinstance(data, list):
        return data
    raise InputError(f"{path}: expected one record (an object) or a list of records")


def _read_csv(path: Path) -> tuple[list[dict[str, Any]], list[int]]:
    try:
        with path.open(encoding="utf-8", newline="") as fh:
            reader = csv.DictReader(fh)
            header = list(reader.fieldnames or [])
            missing = [c for c in FEATURES if c not in header]
            unknown = [c for c in header if c not in FEATURES]
            if missing or unknown:
                parts = []
                if missing:
                    parts.append(f"missing column(s) {', '.join(missing)}")
                if unknown:
                    parts.append(f"unknown column(s) {', '.join(unknown)}")
                raise InputError(f"{path}: CSV header: {'; '.join(parts)}")
            records, lines = [], []
            for row in reader:
                records.append({k: _parse_cell(k, v) for k, v in row.items() if k is not None})
                lines.append(reader.line_num)
    except UnicodeDecodeError:
        raise InputError(f"{path}: not a UTF-8 text file") from None
    return records, lines


def _parse_cell(column: str, text: str | None) -> Any:
    """CSV cells are text: convert by FEATURES kind, leaving bad values for the schema to name."""
    if text is None:
        return None
    kind = FEATURES[column]
    value = text.strip()
    if kind == "category":
        return value
    if value == "" or value.upper() in {"NA", "NAN", "NULL"}:
        return None
    try:
        return int(value) if kind == "int" else float(value)
    except ValueError:
        return value


def _record_problems(validator: Any, record: dict[str, Any]) -> list[str]:
    """One message per field: a wrong type also fails `enum`, and saying it twice is noise."""
    by_field: dict[str, Any] = {}
    for error in validator.iter_errors(record):
        key = str(error.path[0]) if error.path else f"<{error.validator}>"
        if key not in by_field or error.validator == "type":
            by_field[key] = error
    order = {name: i for i, name in enumerate(FEATURES)}
    keys = sorted(by_field, key=lambda k: (order.get(k, -1), k))
    return [_describe(by_field[k], record) for k in keys]


def _describe(error: Any, record: dict[str, Any]) -> str:
    """One jsonschema error as `field 'x' ...` in plain words."""
    if error.validator == "required":
        missing = [f for f in error.validator_value if f not in record]
        return f"missing field {', '.join(repr(f) for f in missing)}"
    if error.validator == "additionalProperties":
        unknown = [f for f in record if f not in FEATURES]
        return f"unknown field {', '.join(repr(f) for f in unknown)}"
    field = error.path[0] if error.path else "?"
    value = _show(error.instance)
    if error.validator == "type":
        expected = error.validator_value
        kinds = expected if isinstance(expected, list) else [expected]
        wanted = " or ".join(_JSON_TYPE.get(str(k), str(k)) for k in kinds)
        return f"field {field!r} must be {wanted}, got {value}"
    if error.validator == "enum":
        allowed = ", ".join(json.dumps(v) for v in error.validator_value)
        return f"field {field!r} must be one of {allowed}; got {value}"
    if error.validator in {"minimum", "maximum"}:
        bound = "at least" if error.validator == "minimum" else "at most"
        return f"field {field!r} must be {bound} {error.validator_value}, got {value}"
    return f"field {field!r}: {error.message}"


def _show(value: Any) -> str:
    text = json.dumps(value)
    return text if len(text) <= 60 else text[:57] + "..."
