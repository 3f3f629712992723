# score: the task's official metrics -> runs/<run id>/<test>.scores.json
def score_inputs(wc):
    t, r = TESTS[f"{wc.run}/{wc.test}"], RUNS[wc.run]
    refs = t["refs"] if t["refs"].startswith("data/slices/") else f"data/{r.source}"
    return [t["hyp"], refs]


rule score:
    input:
        score_inputs,
        code=P.code_deps("score"),  # the project files it runs: editing one re-runs it
    output:
        "runs/{run}/{test}.scores.json",
    params:
        cmd=lambda wc: TESTS[f"{wc.run}/{wc.test}"]["score_cmd"],
    threads: threads("score")
    resources:
        **resources("score"),
    shell:
        "{params.cmd}"
