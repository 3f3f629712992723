# testset: the test slice, an experiment's test_sample inputs drawn at random and/or the first data.test_limit,
# with their reference groups (only when one is set),
# so that decode and score see the same slice. Command and inputs: the stage table (common.smk).
rule testset:
    input:
        lambda wc: inputs(stage("testset", wc.slug)),
        code=lambda wc: stage("testset", wc.slug).code,  # the project files it runs: editing one re-runs it
    output:
        jsonl=f"data/{PRESET}/slices/{{slug}}.jsonl",
        refs=f"data/{PRESET}/slices/{{slug}}.refs.txt",
    log:
        f"{LOGS}/testset/{{slug}}.log",
    params:
        cmd=lambda wc: stage("testset", wc.slug).cmd,
    threads: threads("testset")
    resources:
        **resources("testset"),
    conda:
        "../envs/prefixtune.yaml"
    shell:
        "({params.cmd}) 2>&1 | tee {log}"
