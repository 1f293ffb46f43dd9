"""One adapter per outside system: git, the tracking URI and redaction, MLflow."""
