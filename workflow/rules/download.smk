# download: the raw release of one source (official URLs, or the mirror: data.mirror / $PREFIXTUNE_DATA_MIRROR).
rule download:
    output:
        directory("data/raw/{source}"),
    params:
        cmd=lambda wc: GRID.downloads[wc.source],
    threads: threads("download")
    resources:
        **resources("download"),
    shell:
        "{params.cmd}"
