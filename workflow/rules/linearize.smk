# linearize: source/target JSONL, reference files and the low-data subsamples of one source (a downloaded
# release, or a user's own JSONL files named in params.yaml) -> data/<preset>/<source>/. One rule per source,
# whose outputs are the files the grid reads from it (it may write more), so that a train, decode or testset
# job depends on its own files, not on the whole folder. Everything from the stage table (common.smk).
for _s in [s for s in STAGES.values() if s.kind == "linearize"]:

    rule:
        name:
            f"linearize_{re.sub(r'[^A-Za-z0-9_]', '_', _s.key)}"
        input:
            inputs(_s),
            code=_s.code,  # the project files it runs: editing one re-runs it
        output:
            _s.outs,
        log:
            _s.log,
        params:
            cmd=_s.cmd,
        threads: threads("linearize")
        resources:
            **resources("linearize"),
        conda:
            "../envs/prefixtune.yaml"
        shell:
            "{params.cmd} 2>&1 | tee {log}"
