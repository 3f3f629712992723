# plot: results/plots/*.png from the tables (low-data curves, prefix length, init), as params.expected_plots says.
rule plot:
    input:
        expand("results/tables/{table}.csv", table=P.TABLES),
        code=P.code_deps("plot"),  # the project files it runs: editing one re-runs it
    output:
        GRID.plots or ["results/plots/.none"],
    params:
        cmd="prefixtune plot --tables results/tables --out results/plots",
    threads: threads("plot")
    resources:
        **resources("plot"),
    shell:
        "{params.cmd}"
