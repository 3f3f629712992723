# plot: results/<preset>/plots/*.png from the tables (low-data curves, prefix length, init), as
# prefixtune.params.expected_plots says, and each low-data figure's curves as CSV.
rule plot:
    input:
        expand(f"{RESULTS}/tables/{{table}}.csv", table=P.TABLES),
        f"{RESULTS}/tables/curves.csv",
        code=P.code_deps("plot"),  # the project files it runs: editing one re-runs it
    output:
        [report(png, caption="../report/figure.rst", category="Figures", labels={"figure": Path(png).stem})
         for png in GRID.plots] or [f"{RESULTS}/plots/.none"],
        [p.replace(".png", ".csv") for p in GRID.plots if Path(p).stem.startswith("lowdata_")],  # curves
    log:
        f"{LOGS}/plot.log",
    params:
        cmd=f"prefixtune plot --tables {RESULTS}/tables --out {RESULTS}/plots",
    threads: threads("plot")
    resources:
        **resources("plot"),
    conda:
        "../envs/prefixtune.yaml"
    shell:
        "{params.cmd} 2>&1 | tee {log}"
