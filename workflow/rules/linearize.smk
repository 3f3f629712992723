# linearize: source/target JSONL, reference files and the low-data subsamples of one source (a downloaded
# release, or a user's own JSONL files named in params.yaml) -> data/<preset>/<source>.
rule linearize:
    input:
        lambda wc: GRID.linearize_deps[wc.source],
        code=P.code_deps("linearize"),  # the project files it runs: editing one re-runs it
    output:
        directory(f"data/{PRESET}/{{source}}"),
    log:
        f"{LOGS}/linearize/{{source}}.log",
    params:
        cmd=lambda wc: GRID.linearize[wc.source],
    threads: threads("linearize")
    resources:
        **resources("linearize"),
    conda:
        "../envs/prefixtune.yaml"
    shell:
        "{params.cmd} 2>&1 | tee {log}"
