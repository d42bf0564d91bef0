"""The IPD wing: `coplay ipd train|eval|report|axelrod` — A2C / PPI training runs (train, ppi),
their evaluation, combined reports, Axelrod tournaments; runs.py reads its run folders."""
