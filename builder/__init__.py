"""headjack-images: the pipeline that builds, tests and publishes Headjack's agent images.

The data flows one way: variants -> render -> plan -> build -> test -> publish
(-> sign, SBOM), each stage taking the previous stage's record and returning its own.

    model/    pure data: factory config, variant files, tool pins, the lock, records
              (build, test, release), the build graph, the root's own files,
              rendered contexts, Headjack's label contract. No engine, no
              processes, no Jinja, no terminal.
    engine/   everything that touches the outside: the one command runner
              (timeouts, redaction, retries, stop signals), buildx, containers,
              OCI registries, cosign, git, the state folder.
    stages/   one module per stage (render, plan, build, smoke, publish, sign,
              sbom, lock, root, lint, scaffold). Stages use the model and the
              engine and never each other: they meet only through the model's records.
    present/  what people see: tables, the live build board, the console observer.
    project.py what a command works on, each read once: variants, lock, registry,
              the rendered and planned selection.
    runner.py the stages composed: what `build`, `test`, `publish`, `bump` and `pin` run.
    pipeline.py `release`: every stage in order through one wrapper, stopping at the first failure.
    queries.py read-only look-ups (what a build would do, sizes, what is published).
    cli/      parses options, calls the runner or a query, prints (a module per topic).

Dependency rule: each layer imports only the layers below it
(cli -> pipeline -> runner | queries -> project -> stages | present -> engine -> model); only the engine imports
subprocess, python-on-whales, docker or testcontainers. pyproject.toml states
these as import-linter contracts, and tests/unit/test_architecture.py checks them.
"""

__version__ = "0.1.0"
