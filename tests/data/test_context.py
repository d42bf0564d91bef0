"""Context / query sampling: what each example holds, the augmentations, bad shapes."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from coplay.config import ConfigError
from coplay.data.context import (
    ContextSpec,
    Episodes,
    check_episodes,
    rollout_mask_probs,
    sample_batch,
    sample_context,
)

G, E, T, D = 3, 6, 20, 4


def _data():
    # every step identifiable: obs[..., 0] = group, [1] = episode, [2] = step, [3] = 1
    g, e, t = np.meshgrid(np.arange(G), np.arange(E), np.arange(T), indexing="ij")
    obs = np.stack([g, e, t, np.ones_like(t)], -1).astype(np.uint8)
    action = (g + e + t) % 6
    reward = ((t % 7) == 3).astype(np.float32) * 20
    return Episodes(jnp.asarray(obs), jnp.asarray(action), jnp.asarray(reward))


SPEC = ContextSpec(num_episodes=2, episode_len=T, query_len=4, queries_per_context=5,
                   rollout_mask=False)


def test_context_slots_are_whole_episodes_of_the_group_in_order():
    data = _data()
    groups = jnp.array([2, 0, 1, 2])
    tokens, episodes = sample_context(jax.random.PRNGKey(0), data, groups, SPEC)
    assert tokens.shape == (4, 2 * T, D + 7)
    tok = np.asarray(tokens).reshape(4, 2, T, -1)
    for c in range(4):
        for s in range(2):
            np.testing.assert_array_equal(tok[c, s, :, 0], int(groups[c]))
            np.testing.assert_array_equal(tok[c, s, :, 1], int(episodes[c, s]))
            np.testing.assert_array_equal(tok[c, s, :, 2], np.arange(T))
            a = (int(groups[c]) + int(episodes[c, s]) + np.arange(T)) % 6
            np.testing.assert_array_equal(tok[c, s, :, D:D + 6].argmax(-1), a)
            np.testing.assert_array_equal(tok[c, s, :, -1], (np.arange(T) % 7 == 3) * 20.0)


def test_queries_come_from_another_episode_and_labels_are_its_actions():
    data = _data()
    groups = jnp.array([0, 1, 2, 1, 0, 2, 1, 1])
    batch = sample_batch(jax.random.PRNGKey(1), data, groups, SPEC)
    _, episodes = sample_context(jax.random.split(jax.random.PRNGKey(1), 3)[0], data, groups, SPEC)
    q = np.asarray(batch.query)  # (C, Q, Lq, Din)
    assert q.shape == (8, 5, 4, D + 7) and batch.label.shape == (8, 5, 4)
    for c in range(8):
        for j in range(5):
            valid = np.asarray(batch.label_mask[c, j])
            rows = q[c, j][valid]
            assert (rows[:, 0] == int(groups[c])).all()
            ep = int(rows[0, 1])
            assert ep not in np.asarray(episodes[c])
            steps = rows[:, 2].astype(int)
            np.testing.assert_array_equal(np.diff(steps), 1)  # consecutive, newest last
            np.testing.assert_array_equal(batch.label[c, j][valid],
                                          (int(groups[c]) + ep + steps) % 6)
            assert (rows[:, D:] == 0).all()  # no action, no reward in a query
            assert (q[c, j][~valid] == 0).all()  # front padding is zero
            assert valid[-1] and (not valid.all() or steps[0] >= 0)


def test_front_padding_at_the_start_of_an_episode():
    data = _data()
    spec = ContextSpec(num_episodes=1, episode_len=T, query_len=6, queries_per_context=400,
                       rollout_mask=False)
    batch = sample_batch(jax.random.PRNGKey(2), data, jnp.array([0]), spec)
    mask = np.asarray(batch.label_mask[0])
    t_last = np.asarray(batch.query[0, :, -1, 2])
    np.testing.assert_array_equal(mask.sum(-1), np.minimum(t_last + 1, 6))


def test_rollout_masking_zeros_the_oldest_slots_with_the_papers_odds():
    data = _data()
    spec = ContextSpec(num_episodes=3, episode_len=T, query_len=2, queries_per_context=1,
                       rollout_mask=True, rollout_mask_power=1.5)
    groups = jnp.zeros((4000,), jnp.int32)
    tokens, _ = sample_context(jax.random.PRNGKey(3), data, groups, spec)
    empty = np.asarray((tokens.reshape(4000, 3, T, -1) == 0).all(axis=(2, 3)))  # (C, k)
    m = empty.sum(1)
    # zeroed slots are always the oldest ones
    for c in range(50):
        np.testing.assert_array_equal(empty[c], np.arange(3) < m[c])
    p = np.asarray(rollout_mask_probs(3, 1.5))
    np.testing.assert_allclose(p, np.array([1, 2 ** -1.5, 3 ** -1.5, 4 ** -1.5]) / sum(
        [1, 2 ** -1.5, 3 ** -1.5, 4 ** -1.5]))
    np.testing.assert_allclose(np.bincount(m, minlength=4) / 4000, p, atol=0.03)


def test_step_masking_zeros_action_and_reward_only():
    data = _data()
    tokens, _ = sample_context(jax.random.PRNGKey(4), data, jnp.zeros((200,), jnp.int32), SPEC,
                               step_mask=0.3)
    tok = np.asarray(tokens)
    masked = tok[..., D:D + 6].sum(-1) == 0
    assert abs(masked.mean() - 0.3) < 0.03
    assert (tok[..., 3] == 1).all()  # observations kept
    assert (tok[..., -1][masked] == 0).all()


@pytest.mark.parametrize("shuffle", ["step", "chunk"])
def test_shuffling_permutes_within_a_slot(shuffle):
    data = _data()
    spec = ContextSpec(num_episodes=2, episode_len=T, query_len=2, queries_per_context=1,
                       rollout_mask=False, shuffle=shuffle, chunk_len=5)
    tokens, _ = sample_context(jax.random.PRNGKey(5), data, jnp.zeros((10,), jnp.int32), spec)
    steps = np.asarray(tokens.reshape(10, 2, T, -1)[..., 2]).astype(int)
    assert not (steps == np.arange(T)).all()
    np.testing.assert_array_equal(np.sort(steps, -1), np.broadcast_to(np.arange(T), steps.shape))
    if shuffle == "chunk":  # whole chunks of 5 consecutive steps
        chunks = steps.reshape(10, 2, 4, 5)
        np.testing.assert_array_equal(np.diff(chunks, axis=-1), 1)
        assert (chunks[..., 0] % 5 == 0).all()


def test_step_masking_by_count_masks_exactly_that_many_steps_of_each_context():
    data = _data()
    spec = ContextSpec(num_episodes=2, episode_len=T, query_len=4, queries_per_context=5,
                       rollout_mask=False, step_mask_unit="count")
    for n in (0, 1, 7, 2 * T):
        tokens, _ = sample_context(jax.random.PRNGKey(n), data, jnp.zeros((50,), jnp.int32),
                                   spec, step_mask=float(n))
        tok = np.asarray(tokens)  # (C, k * H, Din)
        masked = tok[..., D:D + 6].sum(-1) == 0
        np.testing.assert_array_equal(masked.sum(-1), n)  # per context, whatever the slots
        assert (tok[..., 3] == 1).all() and (tok[..., -1][masked] == 0).all()
    # which steps varies from context to context
    tokens, _ = sample_context(jax.random.PRNGKey(9), data, jnp.zeros((50,), jnp.int32), spec,
                               step_mask=5.0)
    where = np.asarray(tokens)[..., D:D + 6].sum(-1) == 0
    assert len({tuple(np.flatnonzero(w)) for w in where}) > 40


def test_chunk_shuffling_can_keep_each_slots_first_chunk_in_place():
    data = _data()
    spec = ContextSpec(num_episodes=2, episode_len=T, query_len=2, queries_per_context=1,
                       rollout_mask=False, shuffle="chunk", chunk_len=5,
                       shuffle_keep_first=True)
    tokens, _ = sample_context(jax.random.PRNGKey(5), data, jnp.zeros((40,), jnp.int32), spec)
    steps = np.asarray(tokens.reshape(40, 2, T, -1)[..., 2]).astype(int)
    np.testing.assert_array_equal(steps[..., :5], np.broadcast_to(np.arange(5), (40, 2, 5)))
    rest = steps[..., 5:].reshape(40, 2, 3, 5)
    np.testing.assert_array_equal(np.diff(rest, axis=-1), 1)  # whole chunks behind it
    np.testing.assert_array_equal(np.sort(rest[..., 0], -1), np.broadcast_to([5, 10, 15],
                                                                               (40, 2, 3)))
    assert len({tuple(r) for r in rest[..., 0].reshape(-1, 3)}) == 6  # every order occurs


def test_bad_inputs_are_named():
    with pytest.raises(ConfigError, match="context.shuffle"):
        ContextSpec(shuffle="random").validate()
    with pytest.raises(ConfigError, match="context.chunk_len"):
        ContextSpec(episode_len=200, shuffle="chunk", chunk_len=30).validate()
    data = _data()
    with pytest.raises(ValueError, match="20 steps but context.episode_len = 200"):
        check_episodes(data, ContextSpec())
    with pytest.raises(ValueError, match="disagree"):
        check_episodes(data._replace(action=data.action[:, :-1]), SPEC)


def test_context_only_episodes_never_become_queries():
    # episodes 0..2 of every group may be queried, 3..5 are context-only (a noisy ego's)
    base = _data()
    ok = jnp.broadcast_to(jnp.arange(E) < 3, (G, E))
    data = base._replace(query_ok=ok)
    groups = jnp.tile(jnp.arange(G), 6)
    seen_ctx = set()
    for seed in range(6):
        batch = sample_batch(jax.random.PRNGKey(seed), data, groups, SPEC)
        _, episodes = sample_context(jax.random.split(jax.random.PRNGKey(seed), 3)[0], data,
                                     groups, SPEC)
        seen_ctx |= set(np.asarray(episodes).ravel().tolist())
        q = np.asarray(batch.query)
        queried = q[..., 1][np.asarray(batch.label_mask)]  # obs[1] = the episode index
        assert set(queried.tolist()) <= {0, 1, 2}
        # labels are the queried episodes' own actions
        g, e, t = (q[..., i][np.asarray(batch.label_mask)].astype(int) for i in range(3))
        np.testing.assert_array_equal(np.asarray(batch.label)[np.asarray(batch.label_mask)],
                                      (g + e + t) % 6)
    assert seen_ctx & {3, 4, 5}, "context-only episodes do enter contexts"
    with pytest.raises(ValueError, match="query_ok"):
        check_episodes(base._replace(query_ok=ok[:, :2]), SPEC)


def test_relabelled_episodes_give_their_label_and_keep_their_actions_in_contexts():
    # label = a function of the step unlike the actions: queries read it, contexts do not
    base = _data()
    g, e, t = np.meshgrid(np.arange(G), np.arange(E), np.arange(T), indexing="ij")
    label = jnp.asarray((2 * g + 3 * e + 5 * t + 1) % 6)
    data = base._replace(label=label)
    groups = jnp.tile(jnp.arange(G), 4)
    key = jax.random.PRNGKey(3)
    batch, plain = sample_batch(key, data, groups, SPEC), sample_batch(key, base, groups, SPEC)
    m = np.asarray(batch.label_mask)
    q = np.asarray(batch.query)
    gq, eq, tq = (q[..., i][m].astype(int) for i in range(3))
    np.testing.assert_array_equal(np.asarray(batch.label)[m], (2 * gq + 3 * eq + 5 * tq + 1) % 6)
    np.testing.assert_array_equal(np.asarray(plain.label)[m], (gq + eq + tq) % 6)
    # everything but the labels is the same draw; context tokens carry the ego's own actions
    np.testing.assert_array_equal(batch.context, plain.context)
    np.testing.assert_array_equal(batch.query, plain.query)
    with pytest.raises(ValueError, match="label"):
        check_episodes(data._replace(label=label[:, :2]), SPEC)
