"""coplay: agents that infer their co-player in context (IPD and Overcooked), in JAX."""

__version__ = "0.1.0"
