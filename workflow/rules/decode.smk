# decode: beam search on one test set -> runs/<run id>/<test>.hyp.txt
def decode_inputs(wc):
    t, r = TESTS[f"{wc.run}/{wc.test}"], RUNS[wc.run]
    data = t["input"] if t["input"].startswith("data/slices/") else f"data/{r.source}"
    return [r.method_dir, data]


rule decode:
    input:
        decode_inputs,
        code=P.code_deps("decode"),  # the project files it runs: editing one re-runs it
    output:
        "runs/{run}/{test}.hyp.txt",
    params:
        cmd=lambda wc: TESTS[f"{wc.run}/{wc.test}"]["decode_cmd"],
    threads: threads("decode")
    resources:
        **resources("decode"),
    shell:
        "{params.cmd}"
