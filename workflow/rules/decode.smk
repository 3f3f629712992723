# decode: beam search on one test set -> runs/<preset>/<run id>/<test>.hyp.txt (<test>-alt: with the second
# selection rule's parameters). The command's pieces (model, method folder, input, and the flags of the run's
# DecodeConfig) and its inputs come from the stage table (common.smk: `stage`, `part`).
rule decode:
    input:
        lambda wc: inputs(stage("decode", f"{wc.run}/{wc.test}")),
        code=lambda wc: stage("decode", f"{wc.run}/{wc.test}").code,  # editing one re-runs it
    output:
        f"runs/{PRESET}/{{run}}/{{test}}.hyp.txt",
    log:
        f"{LOGS}/decode/{{run}}/{{test}}.log",
    params:
        model=lambda wc: part("decode", f"{wc.run}/{wc.test}", "--model"),
        method_dir=lambda wc: part("decode", f"{wc.run}/{wc.test}", "--method-dir"),
        input=lambda wc: part("decode", f"{wc.run}/{wc.test}", "--input"),
        settings=lambda wc: part("decode", f"{wc.run}/{wc.test}"),
    threads: threads("decode")
    resources:
        **resources("decode"),
    conda:
        "../envs/prefixtune.yaml"
    shell:
        "prefixtune decode --model {params.model} --method-dir {params.method_dir} --input {params.input} --out {output}"
        "{params.settings} 2>&1 | tee {log}"
