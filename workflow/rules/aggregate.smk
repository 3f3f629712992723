# aggregate: every run's scores and method.json -> results/<preset>/tables/{main,lowdata,extrapolation,
# ablations}.csv (mean, std, n), runs.csv (every run), settings.csv (every run's resolved settings), curves.csv
# (the low-data runs' training logs) and results/<preset>/metrics/<table>.json. Its command hands on the
# --config overlay, so that it expands the same grid. Everything from the stage table (common.smk).
rule aggregate:
    input:
        inputs(stage("aggregate")),
        code=stage("aggregate").code,  # the project files it runs: editing one re-runs it
    output:
        [reported(o) for o in stage("aggregate").outs],
    log:
        stage("aggregate").log,
    params:
        cmd=stage("aggregate").cmd,
    threads: threads("aggregate")
    resources:
        **resources("aggregate"),
    conda:
        "../envs/prefixtune.yaml"
    shell:
        "{params.cmd} 2>&1 | tee {log}"
