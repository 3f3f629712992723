# score: the task's official metrics -> runs/<preset>/<run id>/<test>.scores.json
# Command and inputs: the stage table (common.smk).
rule score:
    input:
        lambda wc: inputs(stage("score", f"{wc.run}/{wc.test}")),
        code=lambda wc: stage("score", f"{wc.run}/{wc.test}").code,  # editing one re-runs it
    output:
        f"runs/{PRESET}/{{run}}/{{test}}.scores.json",
    log:
        f"{LOGS}/score/{{run}}/{{test}}.log",
    params:
        cmd=lambda wc: stage("score", f"{wc.run}/{wc.test}").cmd,
    threads: threads("score")
    resources:
        **resources("score"),
    conda:
        "../envs/prefixtune.yaml"
    shell:
        "{params.cmd} 2>&1 | tee {log}"
