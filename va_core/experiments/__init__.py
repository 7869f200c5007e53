"""The paper's Experiments 1 and 2 on its released dataset, and importing that dataset.

`va experiment exp1|exp2 --data DIR --out FILE` (:mod:`.run`), `va import-va-dataset DIR`
(:mod:`.importer`). See docs/ARCHITECTURE.md, "Paper experiments".
"""
