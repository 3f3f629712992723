# train: one method on one training file -> runs/<preset>/<run id>/method (method.json + weights.safetensors).
rule train:
    input:
        lambda wc: [RUNS[wc.run].train_file, *([RUNS[wc.run].dev_file] if RUNS[wc.run].dev_file else [])],
        code=P.code_deps("train"),  # the project files it runs: editing one re-runs it
    output:
        directory(f"runs/{PRESET}/{{run}}/method"),
    log:
        f"{LOGS}/train/{{run}}.log",
    params:
        cmd=lambda wc: RUNS[wc.run].train_cmd,
    threads: threads("train")
    resources:
        **resources("train"),
    conda:
        "../envs/prefixtune.yaml"
    shell:
        "{params.cmd} 2>&1 | tee {log}"
