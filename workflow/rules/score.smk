# score: the task's official metrics -> runs/<preset>/<run id>/<test>.scores.json
rule score:
    input:
        hyp=f"runs/{PRESET}/{{run}}/{{test}}.hyp.txt",
        refs=lambda wc: test_data(wc, "refs"),
        code=P.code_deps("score"),  # the project files it runs: editing one re-runs it
    output:
        f"runs/{PRESET}/{{run}}/{{test}}.scores.json",
    log:
        f"{LOGS}/score/{{run}}/{{test}}.log",
    params:
        cmd=lambda wc: TESTS[f"{wc.run}/{wc.test}"]["score_cmd"],
    threads: threads("score")
    resources:
        **resources("score"),
    conda:
        "../envs/prefixtune.yaml"
    shell:
        "{params.cmd} 2>&1 | tee {log}"
