"""The iterated matrix game: payoffs from both seats, first-person tokens, purity."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from coplay.envs.matrix_games import (
    START,
    IteratedMatrixGame,
    MatrixGameParams,
    first_person_tokens,
    ipd_params,
    joint_rewards,
)

C, D = 0, 1
# The spec's table, row player first: CC=(1,1), CD=(-1,2), DC=(2,-1), DD=(0,0).
SPEC_PAYOFFS = {(C, C): (1, 1), (C, D): (-1, 2), (D, C): (2, -1), (D, D): (0, 0)}


@pytest.mark.parametrize("joint", list(SPEC_PAYOFFS))
def test_payoffs_of_every_action_pair_from_both_seats(joint):
    env = IteratedMatrixGame(num_rounds=3)
    params = env.default_params()
    _, state = env.reset(jax.random.PRNGKey(0), params)
    _, _, rewards, _, _ = env.step(jax.random.PRNGKey(1), state, jnp.array(joint), params)
    assert tuple(np.asarray(rewards)) == SPEC_PAYOFFS[joint]
    # The same game with the seats swapped gives the swapped rewards.
    swapped = jnp.array(joint[::-1])
    _, _, rewards_sw, _, _ = env.step(jax.random.PRNGKey(1), state, swapped, params)
    assert tuple(np.asarray(rewards_sw)) == SPEC_PAYOFFS[joint][::-1]


def test_ipd_params_from_TRPS_matches_default():
    np.testing.assert_array_equal(ipd_params(2, 1, 0, -1).payoff, MatrixGameParams().payoff)


@pytest.mark.parametrize("joint, tokens", [((C, C), (1, 1)), ((C, D), (2, 3)),
                                            ((D, C), (3, 2)), ((D, D), (4, 4))])
def test_observations_are_first_person(joint, tokens):
    env = IteratedMatrixGame(num_rounds=5)
    params = env.default_params()
    obs, state = env.reset(jax.random.PRNGKey(0), params)
    assert obs.tolist() == [START, START]
    obs, state, _, done, _ = env.step(jax.random.PRNGKey(0), state, jnp.array(joint), params)
    # token = 1 + 2 * own + other: cc=1, cd=2, dc=3, dd=4, each agent sees its own move first
    assert tuple(obs.tolist()) == tokens
    assert not bool(done)


def test_episode_ends_after_exactly_num_rounds():
    env = IteratedMatrixGame(num_rounds=4)
    params = env.default_params()
    _, state = env.reset(jax.random.PRNGKey(0), params)
    dones = []
    for _ in range(4):
        _, state, _, done, _ = env.step(jax.random.PRNGKey(0), state, jnp.array([C, D]), params)
        dones.append(bool(done))
    assert dones == [False, False, False, True]


def test_bad_num_rounds_is_refused():
    with pytest.raises(ValueError, match="num_rounds"):
        IteratedMatrixGame(num_rounds=0)


def test_jit_equals_eager_and_vmap_over_params_equals_loop():
    env = IteratedMatrixGame(num_rounds=10)
    _, state = env.reset(jax.random.PRNGKey(0), env.default_params())
    actions = jnp.array([D, C])
    games = [ipd_params(2, 1, 0, -1), ipd_params(5, 3, 1, 0), ipd_params(3, 2, 0, -2)]
    batched = jax.tree.map(lambda *xs: jnp.stack(xs), *games)
    step = lambda p: env.step(jax.random.PRNGKey(0), state, actions, p)[2]
    vmapped = jax.vmap(step)(batched)
    for i, p in enumerate(games):
        eager = step(p)
        np.testing.assert_array_equal(jax.jit(step)(p), eager)
        np.testing.assert_array_equal(vmapped[i], eager)
    # (T, R, P, S) = (5, 3, 1, 0): D against C earns T for the defector, S for the sucker
    np.testing.assert_array_equal(vmapped[1], [5, 0])


def test_helpers_agree_with_step():
    joint = jnp.array([[C, C], [C, D], [D, C], [D, D]])
    np.testing.assert_array_equal(first_person_tokens(joint), [[1, 1], [2, 3], [3, 2], [4, 4]])
    np.testing.assert_array_equal(joint_rewards(joint, MatrixGameParams()),
                                  [[1, 1], [-1, 2], [2, -1], [0, 0]])
