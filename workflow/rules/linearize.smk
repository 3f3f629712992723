# linearize: source/target JSONL, reference files and the low-data subsamples of one source (a downloaded
# release, or a user's own JSONL files named in params.yaml) -> data/<preset>/<source>/. One rule per source,
# whose outputs are the files the grid reads from it (it may write more), so that a train, decode or testset
# job depends on its own files, not on the whole folder.
for _source, _cmd in GRID.linearize.items():

    rule:
        name:
            f"linearize_{re.sub(r'[^A-Za-z0-9_]', '_', _source)}"
        input:
            GRID.linearize_deps[_source],
            code=P.code_deps("linearize"),  # the project files it runs: editing one re-runs it
        output:
            GRID.data_files(_source),
        log:
            f"{LOGS}/linearize/{_source}.log",
        params:
            cmd=_cmd,
        threads: threads("linearize")
        resources:
            **resources("linearize"),
        conda:
            "../envs/prefixtune.yaml"
        shell:
            "{params.cmd} 2>&1 | tee {log}"
