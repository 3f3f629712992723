# linearize: source/target JSONL, reference files and the low-data subsamples of one source.
rule linearize:
    input:
        "data/raw/{source}",
    output:
        directory("data/{source}"),
    params:
        cmd=lambda wc: GRID.linearize[wc.source],
    threads: threads("linearize")
    resources:
        **resources("linearize"),
    shell:
        "{params.cmd}"
