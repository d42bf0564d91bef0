"""The Overcooked wing: `coplay overcooked train` — self-play PPO runs (ppo)."""
