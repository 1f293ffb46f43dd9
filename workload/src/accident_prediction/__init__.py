"""Reference workload: accident-severity classifiers on NASS CDS crash records.

It talks to the reconciler (`regops`) only through files (the state YAML) and
MLflow (version tags); training registers versions, git promotes them.
"""
