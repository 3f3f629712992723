# download: the raw release of one source (official URLs, or the mirror: data.mirror / $PREFIXTUNE_DATA_MIRROR),
# shared by every preset.
rule download:
    input:
        code=P.code_deps("download"),  # the project files it runs: editing one re-runs it
    output:
        directory("data/raw/{source}"),
    log:
        "logs/download/{source}.log",
    params:
        cmd=lambda wc: GRID.downloads[wc.source],
    threads: threads("download")
    resources:
        **resources("download"),
    conda:
        "../envs/prefixtune.yaml"
    shell:
        "{params.cmd} 2>&1 | tee {log}"
