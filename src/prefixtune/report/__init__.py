"""The reproduction report (`prefixtune reproduce`, reproduce.py): what each module computes for it.

    runs.py       one row per finished run, experiment and decoded set: cell keys, scores, kept step and its dev
                  loss, parameter counts, seconds and machine (from the run folders, run_folder.py)
    numbers.py    every number the paper prints (docs/paper_results.yaml) beside ours from the same experiment
    claims.py     the claims ledger (docs/claims.yaml): each claim's verdict by Student's t on paired runs
    checklist.py  the reproducibility checklist: compute, versions, parameters, times, dev beside test,
                  hyper-parameters and how each was chosen, runs and spread, data checksums
"""
