"""The credential variables regops knows: the one list.

Read by the config's `credentials:` (files.environments fills MLflow's login from the
variables an environment names), by the redaction of reports (`api.environments_report`,
`cli.ci`) and by the masking of every message (`adapters.tracking.mask_secrets`).
No I/O and no import beyond the standard library: the adapters read it at import time.
"""

from __future__ import annotations

import re

# MLflow's login: what MLflow's client reads, and what an environment's `credentials:` fill
# (credential kind -> variable).
CREDENTIAL_VARS = {
    "username": "MLFLOW_TRACKING_USERNAME",
    "password": "MLFLOW_TRACKING_PASSWORD",
    "token": "MLFLOW_TRACKING_TOKEN",
}
# Where the registry's URI comes from: a URI may hold a login (`user:password@host`).
URI_VARS = ("DAGSHUB_REPO", "MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")
# Every variable whose value a report (a pull-request comment, an issue, a summary) must not
# show: each value is hidden, and each URI whole, with its host and its login.
CREDENTIAL_ENV = (*CREDENTIAL_VARS.values(), *URI_VARS)
# The login's secret parts: their values are masked wherever they appear in any text regops
# prints (tracking.mask_secrets). The user name is not a secret there (a message may say who
# is logged in); reports hide it with the rest of CREDENTIAL_ENV.
SECRET_VARS = (CREDENTIAL_VARS["password"], CREDENTIAL_VARS["token"])
# The complement of the list: any other variable whose name looks secret (a cloud key, a CI
# token, another tool's password...), which regops cannot know by name, is masked too.
SECRET_NAME = re.compile(
    r"(PASSWORD|PASSWD|TOKEN|SECRET|API_KEY|ACCESS_KEY|PRIVATE_KEY|CREDENTIAL)", re.IGNORECASE
)


def is_secret_var(name: str) -> bool:
    """Whether the value of the environment variable `name` is masked in every text."""
    return name in SECRET_VARS or SECRET_NAME.search(name) is not None
