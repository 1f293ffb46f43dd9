"""regops: GitOps for the MLflow Model Registry.

Desired state lives in `registry-state/*.yaml`; `regops plan` diffs it against a
live registry and `regops reconcile` converges the registry to it.
"""

__version__ = "0.1.0"
