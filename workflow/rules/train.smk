# train: one method on one training file -> runs/<preset>/<run id>/method (method.json + weights.safetensors).
# Command and inputs: the stage table (common.smk).
rule train:
    input:
        lambda wc: inputs(stage("train", wc.run)),
        code=lambda wc: stage("train", wc.run).code,  # the project files it runs: editing one re-runs it
    output:
        directory(f"runs/{PRESET}/{{run}}/method"),
    log:
        f"{LOGS}/train/{{run}}.log",
    params:
        cmd=lambda wc: stage("train", wc.run).cmd,
    threads: threads("train")
    resources:
        **resources("train"),
    conda:
        "../envs/prefixtune.yaml"
    shell:
        "{params.cmd} 2>&1 | tee {log}"
