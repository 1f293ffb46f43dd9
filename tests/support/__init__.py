"""What the tests share, one module per topic (import from the module, not from here).

- servers: real `mlflow server` subprocesses, free and refused ports, sqlite registries
- paths: the repository's root, fixtures, goldens, schemas and the workload's folder
- builders: DesiredState / LiveState objects for the pure planner
- repo: a state repository for CLI tests (state files, real git, the CLI, the registry)
- environments: two environments (dev, prod) in one repository, each its own registry
- backends: regops in-process and as a process against a server, PostgreSQL, basic auth
- proxy: a fault-injecting proxy in front of a real server
- hostile_server: a hostile MLflow REST server (untrusted answers, TLS)
- accident: the accident workload's trained template registry
- act, fake_github: the workflows run under act against a fake GitHub API
- packaging: this checkout's files copied out (to build the wheels, to serve as a hooks repo)
"""
