"""The Overcooked wing's PPO presets, in one place (the populations wing builds on them):
``tiny`` (the tests), ``default`` (this 2-core CPU), ``paper`` (= ``PPOConfig()``, ZSC-Eval's
values). docs/ppo.md gives the measurements behind each of ``default``'s choices."""

from __future__ import annotations

import dataclasses

from coplay.algos.ppo_config import PPOConfig

# this 2-core CPU: JaxMARL IPPO's feed-forward Overcooked values with separate parameters per
# seat and ZSC-Eval's learning rate 5e-4
PPO_DEFAULT = PPOConfig(
    num_envs=16, num_steps=128, total_steps=5_000_000, updates_per_chunk=10, update_epochs=4,
    num_minibatches=4, learning_rate=5e-4, anneal_lr=True, max_grad_norm=0.5, value_coef=0.5,
    huber_delta=None, value_norm=False, advantage_norm="minibatch", entropy_coefs=(0.01,),
    entropy_horizons=(0.0,), shaping_horizon=2_500_000, network="mlp", activation="tanh",
)

PPO_PRESETS: dict[str, PPOConfig] = {
    # seconds: the tests
    "tiny": dataclasses.replace(PPO_DEFAULT, num_envs=4, num_steps=16, total_steps=256,
                                updates_per_chunk=2, update_epochs=2, num_minibatches=2,
                                horizon=16, hidden_sizes=(16,), shaping_horizon=256),
    "default": PPO_DEFAULT,
    # ZSC-Eval's self-play / HSP values (MAPPO, CNN); feed-forward where ZSC-Eval uses a
    # recurrent policy. GPU scale.
    "paper": PPOConfig(),
}
