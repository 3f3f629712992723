# decode: beam search on one test set -> runs/<preset>/<run id>/<test>.hyp.txt
rule decode:
    input:
        method=f"runs/{PRESET}/{{run}}/method",
        data=lambda wc: test_data(wc, "input"),
        code=P.code_deps("decode"),  # the project files it runs: editing one re-runs it
    output:
        f"runs/{PRESET}/{{run}}/{{test}}.hyp.txt",
    log:
        f"{LOGS}/decode/{{run}}/{{test}}.log",
    params:
        cmd=lambda wc: TESTS[f"{wc.run}/{wc.test}"]["decode_cmd"],
    threads: threads("decode")
    resources:
        **resources("decode"),
    conda:
        "../envs/prefixtune.yaml"
    shell:
        "{params.cmd} 2>&1 | tee {log}"
