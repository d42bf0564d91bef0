"""coplay.algos.ipd_game: the one IPD round, its history, and the callers built on it."""

import jax
import jax.numpy as jnp
import numpy as np

from coplay.agents.tabular import memory1_act, random_memory1
from coplay.algos import ppi
from coplay.algos.ipd_game import History, game_step, new_game, seat_input
from coplay.algos.ipd_rollout import Opponents, coplayer_action
from coplay.envs.matrix_games import COOPERATE, DEFECT, START, MatrixGameParams

C, D = COOPERATE, DEFECT


def fixed(joint):
    return lambda history: (jnp.asarray(joint, jnp.int32), history.token)


def test_a_round_scores_and_tokenises_the_joint_action_per_seat():
    h0 = new_game((3,))
    assert h0.token.shape == (3, 2)
    np.testing.assert_array_equal(h0.token, START)
    np.testing.assert_array_equal(h0.action, -1)
    np.testing.assert_array_equal(h0.reward, 0.0)
    joint = [[C, C], [C, D], [D, D]]
    h1, aux = game_step(h0, fixed(joint), MatrixGameParams())
    np.testing.assert_array_equal(aux, h0.token)  # the policy saw the history before the round
    np.testing.assert_array_equal(h1.action, joint)
    # the spec's IPD: CC (1, 1), CD (-1, 2), DD (0, 0); tokens 1 + 2 own + other
    np.testing.assert_array_equal(h1.reward, [[1, 1], [-1, 2], [0, 0]])
    np.testing.assert_array_equal(h1.token, [[1, 1], [2, 3], [4, 4]])
    x = seat_input(h1, jnp.zeros((3, 10)), seat=1)
    np.testing.assert_array_equal(x.token, [1, 3, 4])
    np.testing.assert_array_equal(x.prev_action, [C, D, D])
    np.testing.assert_array_equal(x.prev_reward, [1, 2, 0])


def test_game_step_under_jit_equals_eager_and_vmap_equals_loop():
    probs = random_memory1(jax.random.PRNGKey(0), (4, 2))
    keys = jax.random.split(jax.random.PRNGKey(1), 6)

    def play(keys):
        def step(h, key):
            h, _ = game_step(h, lambda h: (memory1_act(key, probs, h.token), None),
                             MatrixGameParams())
            return h, h

        return jax.lax.scan(step, new_game((4,)), keys)[1]

    eager = play(keys)
    jitted = jax.jit(play)(keys)
    for a, b in zip(eager, jitted, strict=True):
        np.testing.assert_array_equal(a, b)
    # one game at a time (vmap over games) == the batch
    one = lambda h, a: game_step(h, lambda _: (a, None), MatrixGameParams())[0]  # noqa: E731
    h = History(eager.token[2], eager.action[2], eager.reward[2])
    batched = one(h, eager.action[3])
    looped = [one(jax.tree.map(lambda x, i=i: x[i], h), eager.action[3, i]) for i in range(4)]
    for f in range(3):
        np.testing.assert_array_equal(batched[f], np.stack([lp[f] for lp in looped]))
    np.testing.assert_array_equal(batched.token, eager.token[3])


def test_coplayer_is_the_partner_learner_or_the_tabular_draw():
    tabular = jnp.asarray([[[1.0] * 5, [0.0] * 5]] * 2)  # (L=2, N=2): AllC in game 0, AllD in 1
    opp = Opponents(tabular, jnp.asarray([True, False]))
    learner_action = jnp.asarray([[D, C], [C, C]])  # (L, N)
    got = coplayer_action(jax.random.PRNGKey(0), opp, new_game((2, 2)), learner_action)
    # game 0 is learner vs learner (the flip of the agent axis); game 1 against AllD
    np.testing.assert_array_equal(got, [[C, D], [D, D]])


def test_d0_pairs_equal_the_hand_written_loop():
    n, rounds, key = 5, 7, jax.random.PRNGKey(4)
    got = ppi.make_random_pairs(rounds)(key, n)
    # what make_random_pairs wrote before the shared step
    k_tab, k_play = jax.random.split(key)
    probs = random_memory1(k_tab, (n, 2))
    tokens, acts = jnp.full((n, 2), START, jnp.int32), []
    for k in jax.random.split(k_play, rounds):
        a = memory1_act(k, probs, tokens)
        tokens = 1 + 2 * a + jnp.flip(a, -1)
        acts.append(np.asarray(a))
    acts = np.stack(acts)  # (T, n, 2)
    np.testing.assert_array_equal(got.action, np.concatenate([acts[..., 0].T, acts[..., 1].T]))
    np.testing.assert_array_equal(got.opponent_action,
                                  np.concatenate([acts[..., 1].T, acts[..., 0].T]))
    payoff = np.array([[1.0, -1.0], [2.0, 0.0]])
    np.testing.assert_array_equal(got.reward[:n], payoff[acts[..., 0], acts[..., 1]].T)
