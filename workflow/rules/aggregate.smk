# aggregate: every run's scores and method.json -> results/tables/{main,lowdata,extrapolation,ablations}.csv
# (mean, std, n), results/tables/runs.csv (every run) and results/metrics/<table>.json. It expands the same
# grid, so it gets the same --config overlay.
import json
import shlex

AGGREGATE_CMD = "prefixtune aggregate --params params.yaml --runs runs --tables results/tables " \
                "--metrics results/metrics" + (f" --overlay {shlex.quote(json.dumps(config, sort_keys=True))}"
                                                    if config else "")


rule aggregate:
    input:
        "params.yaml",
        GRID.scores(),
        [r.method_dir for r in RUNS.values()],  # method.json: trainable fraction, training time
        code=P.code_deps("aggregate"),  # the project files it runs: editing one re-runs it
    output:
        expand("results/tables/{table}.csv", table=P.TABLES),
        "results/tables/runs.csv",
        expand("results/metrics/{table}.json", table=P.TABLES),
    params:
        cmd=AGGREGATE_CMD,
    threads: threads("aggregate")
    resources:
        **resources("aggregate"),
    shell:
        "{params.cmd}"
