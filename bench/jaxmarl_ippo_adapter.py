"""Run JaxMARL's IPPO feed-forward Overcooked baseline and record its learning curve.

Runs *inside JaxMARL's virtualenv* (``bench_ppo.py`` starts it as a subprocess). It imports
``ippo_ff_overcooked.py`` from a JaxMARL checkout given on the command line — nothing of
JaxMARL is stored in this repository — stands in for the logging-only modules that script
imports (hydra, omegaconf, wandb: the training code never needs them; ``wandb.log`` becomes a
recorder with wall-clock timestamps), loads the script's own default config
(``config/ippo_ff_overcooked.yaml`` next to it), sets the layout, and runs the script's
``make_train`` exactly as its ``main`` does (``jax.vmap(jax.jit(make_train(config)))`` over
``NUM_SEEDS`` keys). The timer starts before jit, so compile time is included.

    python jaxmarl_ippo_adapter.py --script PATH/ippo_ff_overcooked.py --layout cramped_room

Prints one line ``RESULT {json}`` with the curve: per update ``[env_steps, wall_s, return]``,
where return is the script's logged ``returned_episode_returns`` (mean over the rollout's
steps, envs and agents of each env's last finished episode's sparse return).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
import time
import types
from pathlib import Path

RECORD: list[tuple[float, dict]] = []


def _install_stand_ins() -> None:
    """Modules the script imports only for configuration and logging."""
    hydra = types.ModuleType("hydra")
    hydra.main = lambda **kw: (lambda f: f)
    omegaconf = types.ModuleType("omegaconf")
    omegaconf.OmegaConf = types.SimpleNamespace(to_container=lambda c: c)
    wandb = types.ModuleType("wandb")
    wandb.init = lambda **kw: None
    wandb.log = lambda metric: RECORD.append((time.perf_counter(), metric))
    for name, mod in (("hydra", hydra), ("omegaconf", omegaconf), ("wandb", wandb)):
        sys.modules.setdefault(name, mod)


def _numbers(x):
    """YAML 1.1 reads 5e6 as a string (Hydra reads a float); integral floats become ints."""
    if isinstance(x, dict):
        return {k: _numbers(v) for k, v in x.items()}
    if isinstance(x, str):
        try:
            x = float(x)
        except ValueError:
            return x
    if isinstance(x, float) and x.is_integer() and abs(x) >= 1:
        return int(x)
    return x


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--script", required=True, type=Path, help="ippo_ff_overcooked.py")
    ap.add_argument("--config", type=Path, default=None,
                    help="its YAML config (default: config/ippo_ff_overcooked.yaml beside it)")
    ap.add_argument("--layout", default="cramped_room", help="JaxMARL layout name")
    ap.add_argument("--total-steps", type=float, default=None,
                    help="override TOTAL_TIMESTEPS (default: the config's)")
    ap.add_argument("--seed", type=int, default=None, help="override SEED")
    args = ap.parse_args()

    import numpy as np
    import yaml

    _install_stand_ins()
    spec = importlib.util.spec_from_file_location("jaxmarl_ippo_ff_overcooked", args.script)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    import jax
    from jaxmarl.environments.overcooked import overcooked_layouts

    cfg_path = args.config or args.script.parent / "config" / "ippo_ff_overcooked.yaml"
    config = _numbers(yaml.safe_load(cfg_path.read_text()))
    if args.total_steps is not None:
        config["TOTAL_TIMESTEPS"] = int(args.total_steps)
    if args.seed is not None:
        config["SEED"] = args.seed
    config["ENV_KWARGS"]["layout"] = overcooked_layouts[args.layout]
    shown = {k: v for k, v in config.items() if k not in ("ENV_KWARGS",)}

    t0 = time.perf_counter()
    rngs = jax.random.split(jax.random.PRNGKey(config["SEED"]), config["NUM_SEEDS"])
    train_jit = jax.jit(module.make_train(config))
    out = jax.vmap(train_jit)(rngs)
    jax.block_until_ready(out)
    total = time.perf_counter() - t0
    curve = []
    for t, metric in RECORD:
        steps = float(np.mean(np.asarray(metric["env_step"])))  # (seeds,) when vmapped
        ret = float(np.mean(np.asarray(metric["returned_episode_returns"])))
        curve.append([steps, round(t - t0, 3), ret])
    curve.sort()
    print("RESULT " + json.dumps({
        "layout": args.layout, "total_s": round(total, 3), "jax": jax.__version__,
        "config": shown, "curve": curve,
    }))


if __name__ == "__main__":
    main()
