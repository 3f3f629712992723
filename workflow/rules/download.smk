# download: the raw release of one source (official URLs, or the mirror: data.mirror / $PREFIXTUNE_DATA_MIRROR).
rule download:
    input:
        code=P.code_deps("download"),  # the project files it runs: editing one re-runs it
    output:
        directory("data/raw/{source}"),
    params:
        cmd=lambda wc: GRID.downloads[wc.source],
    threads: threads("download")
    resources:
        **resources("download"),
    shell:
        "{params.cmd}"
