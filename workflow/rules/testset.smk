# testset: the first data.test_limit test inputs and their reference groups (only when test_limit is set),
# so that decode and score see the same slice. Command and inputs: the stage table (common.smk).
rule testset:
    input:
        lambda wc: inputs(stage("testset", wc.slug)),
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
