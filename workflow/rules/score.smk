# score: the task's official metrics -> runs/<preset>/<run id>/<test>.scores.json. The command's pieces and its
# inputs come from the stage table (common.smk: `stage`, `part`).
rule score:
    input:
        lambda wc: inputs(stage("score", f"{wc.run}/{wc.test}")),
        code=lambda wc: stage("score", f"{wc.run}/{wc.test}").code,  # editing one re-runs it
    output:
        f"runs/{PRESET}/{{run}}/{{test}}.scores.json",
    log:
        f"{LOGS}/score/{{run}}/{{test}}.log",
    params:
        task=lambda wc: part("score", f"{wc.run}/{wc.test}", "--task"),
        hyp=lambda wc: part("score", f"{wc.run}/{wc.test}", "--hyp"),
        ref=lambda wc: part("score", f"{wc.run}/{wc.test}", "--ref"),
        more=lambda wc: part("score", f"{wc.run}/{wc.test}"),  # WebNLG: --categories
    threads: threads("score")
    resources:
        **resources("score"),
    conda:
        "../envs/prefixtune.yaml"
    shell:
        "prefixtune score --task {params.task} --hyp {params.hyp} --ref {params.ref} --out {output}"
        "{params.more} 2>&1 | tee {log}"
