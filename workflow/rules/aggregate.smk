# aggregate: every run's scores and method.json -> results/<preset>/tables/{main,lowdata,extrapolation,
# ablations}.csv (mean, std, n), runs.csv (every run), settings.csv (every run's resolved settings) and
# results/<preset>/metrics/<table>.json. It expands the same grid, so it gets the same --config overlay.
import json

AGGREGATE_CMD = (f"prefixtune aggregate --params params.yaml --preset {PRESET} --runs runs/{PRESET} "
                 f"--tables {RESULTS}/tables --metrics {RESULTS}/metrics"
                 + (f" --overlay {shlex.quote(json.dumps(config, sort_keys=True))}" if config else ""))


rule aggregate:
    input:
        "params.yaml",
        GRID.scores(),
        [r.method_dir for r in RUNS.values()],  # method.json: the trainable fraction
        code=P.code_deps("aggregate"),  # the project files it runs: editing one re-runs it
    output:
        [report(f"{RESULTS}/tables/{t}.csv", caption="../report/table.rst", category="Tables",
                labels={"table": t}) for t in P.TABLES],
        report(f"{RESULTS}/tables/runs.csv", caption="../report/runs.rst", category="Tables",
               labels={"table": "runs"}),
        report(f"{RESULTS}/tables/settings.csv", caption="../report/settings.rst", category="Settings",
               labels={"table": "settings"}),
        f"{RESULTS}/tables/curves.csv",  # the low-data runs' training logs (plot draws them)
        expand(f"{RESULTS}/metrics/{{table}}.json", table=P.TABLES),
    log:
        f"{LOGS}/aggregate.log",
    params:
        cmd=AGGREGATE_CMD,
    threads: threads("aggregate")
    resources:
        **resources("aggregate"),
    conda:
        "../envs/prefixtune.yaml"
    shell:
        "{params.cmd} 2>&1 | tee {log}"
