"""The CooT wing: `coplay coot collect|train|bc|dagger|eval|report` — the dataset (data), the
Coordination Transformer and BC runs (train), DAgger (dagger), the evaluation against held-out
partners (eval) and its report."""
