"""Feed-forward actor-critic networks for Overcooked PPO.

Actor and critic are separate towers (no shared torso), each a *torso* on the grid observation
followed by dense layers:

- ``"cnn"``: ZSC-Eval's encoder — convolutions of 32, 64, 32 filters, 3x3, stride 1, SAME
  padding, ReLU — flattened, then ``hidden_sizes`` dense layers.
- ``"mlp"``: the observation flattened, then ``hidden_sizes`` dense layers (JaxMARL IPPO's
  network is this with (64, 64) and tanh).

The critic may see more than the actor (MAPPO-style centralised value): the caller passes its
input separately, e.g. both cooks' observations concatenated on the channel axis.

``ActorCritic.__call__(obs (B, H, W, C), critic_obs (B, H, W, C')) -> logits (B, A), value (B,)``
"""

from __future__ import annotations

from collections.abc import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

_ACTIVATIONS = {"tanh": nn.tanh, "relu": nn.relu}


def orthogonal(scale: float = 1.0):
    """Orthogonal initialiser (as flax's: rows = all but the last axis) computed by NumPy.

    jax 0.10.2's QR on this CPU took ~0.7-1.5 s per call under load (and a vmapped flax init
    using it was seen to deadlock); NumPy's takes microseconds. The matrix comes from a seed
    drawn from ``key``, through ``jax.pure_callback``, so the initialiser still works under
    ``jit`` and ``vmap`` and is a deterministic function of the key.
    """

    def init(key, shape, dtype=jnp.float32):
        n_rows, n_cols = int(np.prod(shape[:-1])), shape[-1]
        seed = jax.random.randint(key, (), 0, np.iinfo(np.int32).max)

        def np_orthogonal(seed):
            rng = np.random.default_rng(int(seed))
            a = rng.standard_normal((max(n_rows, n_cols), min(n_rows, n_cols)))
            q, r = np.linalg.qr(a)
            q = q * np.sign(np.diag(r))  # a Haar-distributed orthogonal matrix
            q = q if n_rows >= n_cols else q.T
            return (scale * q).reshape(shape).astype(dtype)

        return jax.pure_callback(np_orthogonal, jax.ShapeDtypeStruct(shape, dtype), seed,
                                 vmap_method="sequential")

    return init


class Torso(nn.Module):
    """(B, H, W, C) -> (B, F) features: optional convolutions, flatten, dense layers."""

    conv_filters: Sequence[int]  # () for an MLP
    hidden_sizes: Sequence[int]
    activation: str = "tanh"
    kernel_size: int = 3

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        act = _ACTIVATIONS[self.activation]
        for i, f in enumerate(self.conv_filters):
            x = nn.Conv(f, (self.kernel_size, self.kernel_size), padding="SAME",
                        kernel_init=orthogonal(np.sqrt(2)), name=f"conv{i}")(x)
            x = nn.relu(x)  # ZSC-Eval's CNN uses ReLU whatever the MLP activation
        x = x.reshape(x.shape[0], -1)  # (B, H * W * C)
        for i, h in enumerate(self.hidden_sizes):
            x = act(nn.Dense(h, kernel_init=orthogonal(np.sqrt(2)),
                             name=f"dense{i}")(x))
        return x


class ActorCritic(nn.Module):
    """Separate actor and critic towers over grid observations."""

    num_actions: int = 6
    conv_filters: Sequence[int] = ()
    """Convolution filters of each tower; () = MLP, (32, 64, 32) = ZSC-Eval's CNN."""
    hidden_sizes: Sequence[int] = (64, 64)
    """Dense layers after the (optional) convolutions."""
    activation: str = "tanh"
    """Activation of the dense layers: tanh or relu."""
    kernel_size: int = 3

    @nn.compact
    def __call__(self, obs: jax.Array, critic_obs: jax.Array) -> tuple[jax.Array, jax.Array]:
        logits = _actor_logits(self, obs)  # (B, A)
        critic = Torso(self.conv_filters, self.hidden_sizes, self.activation, self.kernel_size,
                       name="critic")
        value = nn.Dense(1, kernel_init=orthogonal(1.0), name="value")(critic(critic_obs))
        return logits, value[:, 0]


def _actor_logits(module: nn.Module, obs: jax.Array) -> jax.Array:
    """The actor tower (submodules ``actor`` and ``policy``) inside ``module``'s compact
    call: ActorCritic and ActorOnly build it here, so their parameters are the same tree."""
    x = Torso(module.conv_filters, module.hidden_sizes, module.activation, module.kernel_size,
              name="actor")(obs)
    return nn.Dense(module.num_actions, kernel_init=orthogonal(0.01), name="policy")(x)


def critic_input(obs: jax.Array, centralised: bool, seat_axis: int) -> jax.Array:
    """The critic's observation for each seat: own obs, or own + partner's (channels concat).

    ``obs`` holds both seats' ego-centric observations on ``seat_axis`` (size 2), channels last.
    """
    if not centralised:
        return obs
    return jnp.concatenate([obs, jnp.flip(obs, axis=seat_axis)], axis=-1)


def make_network(kind: str, hidden_sizes: Sequence[int], activation: str,
                 cnn_filters: Sequence[int] = (32, 64, 32), num_actions: int = 6) -> ActorCritic:
    """``kind`` "cnn" or "mlp"."""
    if kind not in ("cnn", "mlp"):
        raise ValueError(f"network kind {kind!r}: choose cnn or mlp")
    filters = tuple(cnn_filters) if kind == "cnn" else ()
    return ActorCritic(num_actions, filters, tuple(hidden_sizes), activation)


class ActorOnly(nn.Module):
    """The actor tower of :class:`ActorCritic` alone (submodules ``actor`` and ``policy``, as
    there): runs on the actor half of an ActorCritic's parameters, e.g. a zoo entry, which
    ships without the critic. Takes (and ignores) ``critic_obs`` and returns a zero value so
    that it stands in for an ActorCritic wherever only the logits are used."""

    num_actions: int = 6
    conv_filters: Sequence[int] = ()
    hidden_sizes: Sequence[int] = (64, 64)
    activation: str = "tanh"
    kernel_size: int = 3

    @nn.compact
    def __call__(self, obs: jax.Array, critic_obs: jax.Array | None = None
                 ) -> tuple[jax.Array, jax.Array]:
        del critic_obs
        logits = _actor_logits(self, obs)
        return logits, jnp.zeros(logits.shape[:1], logits.dtype)


def actor_only(net: ActorCritic) -> ActorOnly:
    """The :class:`ActorOnly` network of ``net``'s actor tower."""
    return ActorOnly(net.num_actions, tuple(net.conv_filters), tuple(net.hidden_sizes),
                     net.activation, net.kernel_size)
