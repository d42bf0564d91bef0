"""One participant's way through a study, and the game loop of their episodes.

Phases: ``consent`` -> ``pre`` -> for each agent in the participant's (random, recorded)
order: ``ready`` / ``play`` per episode, then ``rate`` -> ``done``. The phase is derived from
the database each time a page connects, so a reconnect (or a restarted server) resumes where
the participant stopped: an interrupted episode is marked aborted and, when the participant
presses start again, continues from its last recorded step (state and agent state rebuilt by
replaying the recorded steps with their keys), so a killed server loses at most the step in
flight.

The game loop is an asyncio task per playing participant: at each tick the latest key the page
sent (none: stay) is the human cook's action; agent and env step in one jitted call; the step
is written (committed) before its frame is sent.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import numpy as np

from coplay.web.protocol import RATING_FIELDS, ProtocolError
from coplay.web.runtime import GameRuntime, state_from_dict
from coplay.web.store import Store


class Live:
    """What the server holds in memory for a participant (at most one connection)."""

    def __init__(self, pid: int):
        self.pid = pid
        self.send = None  # async callable(dict) of the current connection, or None
        self.sid: int | None = None
        self.slot_state: tuple[int, int, Any] | None = None  # (slot, episodes done, agent state)
        self.task: asyncio.Task | None = None
        self.key: int | None = None  # latest key since the last tick
        self.moves: asyncio.Queue = asyncio.Queue(4)  # IPD: the moves not yet played


class Study:
    """The flow and game loops of every participant of one study."""

    def __init__(self, runtime: GameRuntime, store: Store):
        self.rt, self.store, self.cfg = runtime, store, runtime.cfg
        self.live: dict[int, Live] = {}

    # --- where a participant is -----------------------------------------------------------
    def phase(self, pid: int) -> dict:
        p = self.store.participant(pid)
        order = json.loads(p["agent_order"])
        info = {"type": "phase", "num_agents": len(order),
                "episodes_per_agent": self.cfg.episodes_per_agent}
        if p["consent_at"] is None:
            return {**info, "phase": "consent"}
        if not self.store.has_answer(pid, "pre"):
            return {**info, "phase": "pre"}
        colours = {a.name: a.hex for a in self.cfg.agents}
        for slot, name in enumerate(order):
            done = len(self.store.done_episodes(pid, slot))
            here = {**info, "agent": slot + 1, "colour": colours[name]}
            if done < self.cfg.episodes_per_agent:
                live = self.live.get(pid)
                playing = live is not None and live.task is not None and not live.task.done()
                if playing:
                    return {**here, "phase": "play", "episode": done + 1}
                row = self.store.interrupted(pid, slot, done)
                resume = 0 if row is None else len(self.store.steps(row["id"]))
                return {**here, "phase": "ready", "episode": done + 1, "resume": resume}
            if not self.store.has_answer(pid, "rating", slot):
                return {**here, "phase": "rate"}
        return {**info, "phase": "done", "code": self.store.finish(pid)}

    # --- connections ----------------------------------------------------------------------
    async def attach(self, pid: int, send) -> Live:
        live = self.live.setdefault(pid, Live(pid))
        if live.task is not None and not live.task.done():  # the page reloaded mid-episode
            live.task.cancel()
            try:
                await live.task
            except asyncio.CancelledError:
                pass
        if live.sid is not None:
            self.store.close_session(live.sid)
        live.send, live.sid, live.key = send, self.store.open_session(pid), None
        await send(self.layout_message())
        await send(self.phase(pid))
        return live

    async def detach(self, live: Live, send) -> None:
        if live.send is not send:  # replaced by a newer connection already
            return
        if live.task is not None and not live.task.done():
            live.task.cancel()
            try:
                await live.task
            except asyncio.CancelledError:
                pass
        live.send = None
        if live.sid is not None:
            self.store.close_session(live.sid)
            live.sid = None

    def layout_message(self) -> dict:
        if self.rt.game == "ipd":
            return {"type": "layout", "game": "ipd", "episode_length": self.cfg.episode_length,
                    "payoff": np.asarray(self.rt.params.payoff).tolist()}
        layout = self.rt.env.layout
        return {"type": "layout", "game": "overcooked", "terrain": layout.terrain.tolist(),
                "recipe_time": self.rt.params.recipe_time.tolist(),
                "human_seat": self.cfg.human_seat, "episode_length": self.cfg.episode_length}

    # --- messages -------------------------------------------------------------------------
    async def handle(self, live: Live, msg: dict) -> None:
        """One checked message (not hello); ProtocolError if it does not fit the phase."""
        pid, kind = live.pid, msg["type"]
        phase = self.phase(pid)
        if kind == "key":
            if phase["phase"] != "play":
                raise ProtocolError(f"key: no episode is running (phase {phase['phase']})")
            if self.rt.game == "ipd":
                if msg["action"] > 1:
                    raise ProtocolError("key.action: 0 (cooperate) or 1 (defect) in this game")
                try:
                    live.moves.put_nowait(msg["action"])
                except asyncio.QueueFull:
                    raise ProtocolError("key: wait for the round's result") from None
            else:
                live.key = msg["action"]
            return
        expected = {"consent": "consent", "pre": "pre", "start": "ready", "rating": "rate"}[kind]
        if phase["phase"] != expected:
            raise ProtocolError(f"{kind}: not expected now (phase {phase['phase']})")
        if kind == "consent":
            self.store.set_consent(pid)
        elif kind == "pre":
            self.store.add_answer(pid, "pre", msg["answers"])
        elif kind == "rating":
            slot = phase["agent"] - 1
            name = json.loads(self.store.participant(pid)["agent_order"])[slot]
            data = {f: msg[f] for f in RATING_FIELDS}
            data["comment"] = msg.get("comment", "")
            self.store.add_answer(pid, "rating", data, slot, name)
        elif kind == "start":
            live.task = asyncio.create_task(self.play(live, phase["agent"] - 1,
                                                      phase["episode"] - 1))
        await live.send(self.phase(pid))

    # --- the game loop --------------------------------------------------------------------
    def agent_state(self, live: Live, seed: int, slot: int, name: str, episode: int):
        if self.rt.game == "ipd":  # every game from a fresh state
            return self.rt.reset(name, seed, slot, episode)
        if live.slot_state is not None and live.slot_state[:2] == (slot, episode):
            return live.slot_state[2]
        done = self.store.done_episodes(live.pid, slot)
        episodes = [[(json.loads(s["state"]), s["human_action"], s["agent_action"], s["reward"])
                     for s in self.store.steps(e["id"])] for e in done]
        state, _ = self.rt.replay(name, seed, slot, episodes)
        return state

    async def play(self, live: Live, slot: int, episode: int) -> None:
        p = self.store.participant(live.pid)
        name = json.loads(p["agent_order"])[slot]
        seed = p["seed"]
        agent_state = self.agent_state(live, seed, slot, name, episode)
        live.slot_state = (slot, episode, agent_state)
        state, score, rewards, live.key = self.rt.initial_state, 0.0, [], None
        live.moves, history, ipd = asyncio.Queue(4), [], self.rt.game == "ipd"
        row = self.store.interrupted(live.pid, slot, episode)
        if row is None:
            eid, start = self.store.start_episode(live.pid, live.sid, slot, name, episode,
                                                  self.rt.human), 0
        else:  # continue after the last recorded step, replayed with its keys
            eid = row["id"]
            self.store.resume_episode(eid, live.sid)
            recorded = self.store.steps(eid)
            for t, s in enumerate(recorded):
                state, agent_state, act, reward, shaped = self.rt.tick(
                    name, seed, slot, episode, t, self.rt.from_dict(json.loads(s["state"])),
                    agent_state, s["human_action"])
                score += reward
                rewards.append(reward)
                history.append([s["human_action"], act, float(shaped[0]), float(shaped[1])])
            start = len(recorded)
        period = 1.0 / self.cfg.tick_hz
        loop = asyncio.get_running_loop()
        try:
            await self._frame(live, state, start, score, history if ipd else None)
            due = loop.time() + period
            for t in range(start, self.cfg.episode_length):
                if ipd:  # a round when the participant moves
                    human, lateness = await live.moves.get(), 0.0
                else:
                    await asyncio.sleep(max(0.0, due - loop.time()))
                    lateness = max(0.0, loop.time() - due)
                    human = self.rt.idle_action if live.key is None else live.key
                    live.key = None
                before = state
                state, agent_state, act, reward, shaped = self.rt.tick(
                    name, seed, slot, episode, t, before, agent_state, human)
                self.store.add_step(eid, t, self.rt.to_dict(before), human, act, reward,
                                    (shaped[self.rt.human], shaped[self.rt.seat]), time.time(),
                                    lateness)
                score += reward
                rewards.append(reward)
                history.append([human, act, float(shaped[0]), float(shaped[1])])
                await self._frame(live, state, t + 1, score, history if ipd else None)
                due += period
        except BaseException:
            self.store.end_episode(eid, "aborted")
            raise
        self.store.end_episode(eid, "done", score)
        live.slot_state = (slot, episode + 1, self.rt.end_episode(name, agent_state, rewards))
        live.task = None
        if live.send is not None:
            await live.send({"type": "episode_end", "score": score})
            await live.send(self.phase(live.pid))

    async def _frame(self, live: Live, state, t: int, score: float, history=None) -> None:
        if live.send is None:
            return
        frame = {"type": "frame", "t": t, "score": score, "state": self.rt.to_dict(state)}
        if history is not None:
            frame["history"] = history  # IPD: [[own, agent's, own payoff, agent's payoff], ...]
        try:
            await live.send(frame)
        except Exception:  # a closed socket: the episode goes on until the page detaches
            pass


def replay_check(rt: GameRuntime, store: Store, pid: int, slot: int, name: str) -> int:
    """Agent actions that differ when the participant's finished episodes with ``slot`` are
    replayed (0: the recorded keys reproduce the play exactly)."""
    p = store.participant(pid)
    episodes = [[(json.loads(s["state"]), s["human_action"], s["agent_action"], s["reward"])
                 for s in store.steps(e["id"])] for e in store.done_episodes(pid, slot)]
    return rt.replay(name, p["seed"], slot, episodes)[1]


__all__ = ["Study", "Live", "replay_check", "state_from_dict"]
