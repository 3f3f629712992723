# decode: beam search on one test set -> runs/<preset>/<run id>/<test>.hyp.txt
# Command and inputs: the stage table (common.smk).
rule decode:
    input:
        lambda wc: inputs(stage("decode", f"{wc.run}/{wc.test}")),
        code=lambda wc: stage("decode", f"{wc.run}/{wc.test}").code,  # editing one re-runs it
    output:
        f"runs/{PRESET}/{{run}}/{{test}}.hyp.txt",
    log:
        f"{LOGS}/decode/{{run}}/{{test}}.log",
    params:
        cmd=lambda wc: stage("decode", f"{wc.run}/{wc.test}").cmd,
    threads: threads("decode")
    resources:
        **resources("decode"),
    conda:
        "../envs/prefixtune.yaml"
    shell:
        "{params.cmd} 2>&1 | tee {log}"
