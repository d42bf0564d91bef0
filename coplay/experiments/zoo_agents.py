"""Zoo entries back into agents: :func:`zoo_agent` rebuilds an entry as an
:class:`~coplay.agents.base.Agent`, dispatching on its meta's ``agent`` (``actor-critic`` when
absent: a population member or adaptive learner's actor tower; ``coot``: the in-context
Coordination Transformer; ``bc``; ``ipd-gru``: an A2C IPD learner). ``refs.resolve("zoo:<name>")``
calls it. Writing entries is
:mod:`coplay.experiments.zoo.export` (it reads run folders, so it sits above the drivers;
this module needs only the layers below them)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from coplay import zoo
from coplay.agents.actor_critic import ActorOnly, make_network
from coplay.agents.base import Agent, actor_critic_agent, gru_agent
from coplay.agents.coot_agent import coot_agent
from coplay.agents.gpt import GPTConfig, make_gpt
from coplay.algos import a2c, bc
from coplay.config import ConfigError, config_from_json
from coplay.data.context import ContextSpec
from coplay.runs import RunError

ACTOR_KEYS = ("actor", "policy")
AGENT_KINDS = ("actor-critic", "coot", "bc", "ipd-gru")


def actor_params(params: dict) -> dict:
    """The actor half ``{"params": {"actor", "policy"}}`` of an ActorCritic's parameters."""
    inner = params.get("params") if isinstance(params, dict) else None
    if not isinstance(inner, dict) or not all(k in inner for k in ACTOR_KEYS):
        found = ", ".join(map(str, inner)) if isinstance(inner, dict) else type(params).__name__
        raise RunError(f"not an actor-critic parameter tree: expected params/actor and "
                       f"params/policy, found {found}")
    return {"params": {k: inner[k] for k in ACTOR_KEYS}}


def zoo_agent(name: str, zoo_dir=None) -> Agent:
    """The policy stored as zoo entry ``name``, by meta's ``agent``: ``actor-critic`` (the
    default; a population member or adaptive learner: its actor tower, acting exactly as the
    full network's actor up to the float16 rounding of the stored weights), ``coot`` (the
    in-context Coordination Transformer), ``bc`` or ``ipd-gru`` (an A2C IPD learner)."""
    params, meta = zoo.load_entry(name, zoo_dir)
    agent = meta.get("agent", "actor-critic")
    if agent == "coot":
        return _coot_agent(name, params, meta)
    if agent == "bc":
        return _bc_agent(name, params, meta)
    if agent == "ipd-gru":
        return _ipd_gru_agent(name, params, meta)
    if agent != "actor-critic":
        raise zoo.ZooError(f"zoo entry {name!r}: meta agent {agent!r} is not one of "
                           f"{', '.join(AGENT_KINDS)} (written by a newer coplay?)")
    return _actor_critic_agent(name, params, meta)


def _bad_meta(name: str, what: str, e: Exception) -> zoo.ZooError:
    return zoo.ZooError(f"zoo entry {name!r}: its meta does not describe {what} "
                        f"({type(e).__name__}: {e})")


def _coot_agent(name: str, params: dict, meta: dict) -> Agent:
    try:
        gpt = config_from_json(GPTConfig, meta["gpt"], f"zoo entry {name!r} meta gpt")
        spec = config_from_json(ContextSpec, meta["context"], f"zoo entry {name!r} meta context")
        obs_dim = int(np.prod(meta["obs_shape"]))
        model = make_gpt(gpt)
    except (KeyError, TypeError, ValueError, ConfigError) as e:
        raise _bad_meta(name, "a Coordination Transformer", e) from None
    label = f"zoo:{name} ({meta.get('layout', '?')} coot seed {meta.get('seed', '?')})"
    return coot_agent(model, jax.tree.map(jnp.asarray, params), spec.num_episodes,
                      spec.episode_len, spec.query_len, obs_dim, label)


def _bc_agent(name: str, params: dict, meta: dict) -> Agent:
    try:
        cfg = config_from_json(bc.BCConfig, meta["bc"], f"zoo entry {name!r} meta bc")
        bc.validate(cfg)
    except (KeyError, TypeError, ValueError, ConfigError) as e:
        raise _bad_meta(name, "a BC policy", e) from None
    label = f"zoo:{name} ({meta.get('layout', '?')} bc top{cfg.top_fraction:g})"
    return bc.bc_agent(cfg, jax.tree.map(jnp.asarray, params), label)


def _ipd_gru_agent(name: str, params: dict, meta: dict) -> Agent:
    try:
        cfg = config_from_json(a2c.A2CConfig, meta["a2c"], f"zoo entry {name!r} meta a2c")
        module = a2c.make_agent(cfg)
    except (KeyError, TypeError, ValueError, ConfigError) as e:
        raise _bad_meta(name, "an A2C IPD learner", e) from None
    label = f"zoo:{name} (ipd a2c seed {meta.get('seed', '?')} {meta.get('role', '')})"
    return gru_agent(module, _as_jnp(params), label)


def _actor_critic_agent(name: str, params: dict, meta: dict) -> Agent:
    try:
        net_meta = meta["network"]
        net = make_network(net_meta["kind"], tuple(net_meta["hidden_sizes"]),
                           net_meta["activation"], tuple(net_meta["cnn_filters"]),
                           int(net_meta["num_actions"]))
        channels = int(net_meta["obs_shape"][-1])
    except (KeyError, TypeError, ValueError, IndexError) as e:
        raise _bad_meta(name, "an actor-critic network", e) from None
    actor = ActorOnly(net.num_actions, net.conv_filters, net.hidden_sizes, net.activation,
                      net.kernel_size)
    try:
        params = actor_params(params)
    except RunError as e:
        raise zoo.ZooError(f"zoo entry {name!r}: {e}") from None
    params = {"params": {k: _as_jnp(v) for k, v in params["params"].items()}}
    role = meta.get("role", "policy")
    who = f"member {meta['member']} {role}" if "member" in meta else role
    label = f"zoo:{name} ({meta.get('layout', '?')} {meta.get('kind', '?')} {who})"
    return actor_critic_agent(actor, params, channels, False, label)


def _as_jnp(tree):
    if isinstance(tree, dict):
        return {k: _as_jnp(v) for k, v in tree.items()}
    return jnp.asarray(tree, jnp.float32)
