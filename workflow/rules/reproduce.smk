# reproduce: the finished runs, docs/paper_results.yaml (the paper's numbers), docs/claims.yaml (its claims) and
# docs/paper_settings.yaml (its protocol) -> results/<preset>/reproduction.md, reproduction.csv (one row per
# paper number) and claims.csv (one row per claim and comparison). Everything from the stage table (common.smk).
rule reproduce:
    input:
        inputs(stage("reproduce")),
        code=stage("reproduce").code,  # the project files it runs: editing one re-runs it
    output:
        [report(o, caption="../report/reproduction.rst", category="Reproduction", labels={"file": Path(o).name})
         for o in stage("reproduce").outs],
    log:
        stage("reproduce").log,
    params:
        cmd=stage("reproduce").cmd,
    threads: threads("reproduce")
    resources:
        **resources("reproduce"),
    conda:
        "../envs/prefixtune.yaml"
    shell:
        "{params.cmd} 2>&1 | tee {log}"
