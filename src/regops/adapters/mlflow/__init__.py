"""The MLflow registry: reads (REST pager), writes, retry, copies, the executor."""
