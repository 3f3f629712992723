# linearize: source/target JSONL, reference files and the low-data subsamples of one source (a downloaded
# release, or a user's own JSONL files named in params.yaml).
rule linearize:
    input:
        lambda wc: GRID.linearize_deps[wc.source],
        code=P.code_deps("linearize"),  # the project files it runs: editing one re-runs it
    output:
        directory("data/{source}"),
    params:
        cmd=lambda wc: GRID.linearize[wc.source],
    threads: threads("linearize")
    resources:
        **resources("linearize"),
    shell:
        "{params.cmd}"
