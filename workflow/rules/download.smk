# download: the raw release of one source (official URLs, or the mirror: data.mirror / $PREFIXTUNE_DATA_MIRROR),
# shared by every preset. Command, inputs and log: the stage table (common.smk).
rule download:
    input:
        code=lambda wc: stage("download", wc.source).code,  # the project files it runs: editing one re-runs it
    output:
        directory("data/raw/{source}"),
    log:
        "logs/download/{source}.log",
    params:
        cmd=lambda wc: stage("download", wc.source).cmd,
    threads: threads("download")
    resources:
        **resources("download"),
    conda:
        "../envs/prefixtune.yaml"
    shell:
        "{params.cmd} 2>&1 | tee {log}"
