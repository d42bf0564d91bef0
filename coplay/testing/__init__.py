"""Bridges to reference implementations — the Python Overcooked-AI (``overcooked`` on PyPI),
ZSC-Eval's environment code, JaxMARL's dict-keyed API — for differential tests, benchmarks and
scripts only. Nothing in the package's other rooms imports this one."""
