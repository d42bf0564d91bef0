"""Co-player populations for Overcooked: hidden-utility (HSP) pairs, diversity features,
greedy training pools and k-DPP evaluation sets, cross-play (docs/populations.md)."""
