"""The populations wing: `coplay populations train|select|show` — HSP pairs and MEP stage 1
(train), the stage-2 adaptive agents (adaptive)."""
