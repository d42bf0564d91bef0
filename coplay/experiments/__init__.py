"""The drivers: one wing per system (ipd, overcooked, populations, coot, zoo; each with its
CLI, its presets and its drivers), standing on a floor shared by all of them: the agent
reference grammar and resolver (:mod:`~coplay.experiments.refs`), the readers of every run
kind (:mod:`~coplay.experiments.run_agents`), zoo entries as agents
(:mod:`~coplay.experiments.zoo_agents`) and CLI helpers. A wing imports only from the floor
and the wings below it: ipd < overcooked < populations < coot < zoo (tests/test_layering.py)."""
