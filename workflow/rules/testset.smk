# testset: the first data.test_limit test inputs and their reference groups (only when test_limit is set),
# so that decode and score see the same slice.
rule testset:
    input:
        lambda wc: f"data/{GRID.testsets[wc.slug]['source']}",
    output:
        jsonl="data/slices/{slug}.jsonl",
        refs="data/slices/{slug}.refs.txt",
    params:
        cmd=lambda wc: GRID.testsets[wc.slug]["cmd"],
    threads: threads("testset")
    resources:
        **resources("testset"),
    shell:
        "{params.cmd}"
