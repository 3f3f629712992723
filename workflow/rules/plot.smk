# plot: results/<preset>/plots/*.png from the tables (low-data curves, prefix length, init), as
# prefixtune.params.expected_plots says, and each low-data figure's curves as CSV. From the stage table.
rule plot:
    input:
        inputs(stage("plot")),
        code=stage("plot").code,  # the project files it runs: editing one re-runs it
    output:
        [report(o, caption="../report/figure.rst", category="Figures", labels={"figure": Path(o).stem})
         if o.endswith(".png") else o for o in stage("plot").outs] or [f"{RESULTS}/plots/.none"],
    log:
        stage("plot").log,
    params:
        cmd=stage("plot").cmd,
    threads: threads("plot")
    resources:
        **resources("plot"),
    conda:
        "../envs/prefixtune.yaml"
    shell:
        "{params.cmd} 2>&1 | tee {log}"
