"""The zoo wing: `coplay zoo list|verify|export` — run folders and populations written into
the model zoo (export)."""
