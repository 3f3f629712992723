# train: one method on one training file -> runs/<run id>/method (method.json + weights.safetensors).
rule train:
    input:
        lambda wc: f"data/{RUNS[wc.run].source}",
        code=P.code_deps("train"),  # the project files it runs: editing one re-runs it
    output:
        directory("runs/{run}/method"),
    params:
        cmd=lambda wc: RUNS[wc.run].train_cmd,
    threads: threads("train")
    resources:
        **resources("train"),
    shell:
        "{params.cmd}"
