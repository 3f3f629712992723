# train: one method on one training file -> runs/<preset>/<run id>/method (method.json + weights.safetensors).
# The command's pieces (model, method, files, and the flags of the run's MethodConfig and TrainConfig) and its
# inputs come from the stage table (common.smk: `stage`, `part`).
rule train:
    input:
        lambda wc: inputs(stage("train", wc.run)),
        code=lambda wc: stage("train", wc.run).code,  # the project files it runs: editing one re-runs it
    output:
        directory(f"runs/{PRESET}/{{run}}/method"),
    log:
        f"{LOGS}/train/{{run}}.log",
    params:
        model=lambda wc: part("train", wc.run, "--model"),
        method=lambda wc: part("train", wc.run, "--method"),
        train=lambda wc: part("train", wc.run, "--train"),
        settings=lambda wc: part("train", wc.run),  # --dev FILE and the settings' flags
    threads: threads("train")
    resources:
        **resources("train"),
    conda:
        "../envs/prefixtune.yaml"
    shell:
        "prefixtune train --model {params.model} --method {params.method} --train {params.train} --out {output}"
        "{params.settings} 2>&1 | tee {log}"
