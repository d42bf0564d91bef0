"""Event vocabularies (ZSC-Eval's ``SHAPED_INFOS``): the features of hidden utilities.

Per agent and per step the env emits a 0/1 vector over the vocabulary of its dynamics:
17 events for the old (onion-only) dynamics, 29 for the new (multi-recipe) ones, with the
meanings of ZSC-Eval's ``resolve_interacts`` / ``resolve_movement``:

- MOVEMENT: a direction action (even if blocked); STAY: the STAY action;
  IDLE_MOVEMENT: a direction action that changed neither position nor orientation.
- put_<obj>_on_X / pickup_<obj>_from_X: placing on / taking from a counter;
  pickup_onion_from_O, pickup_tomato_from_T, pickup_dish_from_D: dispensers.
- USEFUL_DISH_PICKUP: dish from the dispenser while fewer dishes are held than pots are
  cooking, ready or partially full, and no dish lies on a counter.
- SOUP_PICKUP: a ready soup taken from a pot with a dish; PLACEMENT_IN_POT: an ingredient
  added to a pot; delivery: a soup handed in at a serving tile.
- new only: potting_<ingredient>, {viable,optimal,catastrophic,useless}_placement (judged on
  the best order still reachable from the pot's contents), cook (INTERACT with an empty hand
  starts an idle non-empty pot), deliver_size_{two,three}_order, deliver_useless_order
  (delivered value <= 0).
- IDLE_INTERACT_X (old) / IDLE_INTERACT (new): INTERACT on a counter that neither placed nor
  picked up; IDLE_INTERACT_EMPTY (old) / IDLE_INTERACT (new): INTERACT that fell through every
  rule (holding something at a dispenser, empty-handed at a serving tile, facing floor, and —
  old dynamics only — empty-handed at a pot).
"""

from __future__ import annotations

OLD_EVENTS: tuple[str, ...] = (
    "put_onion_on_X",
    "put_dish_on_X",
    "put_soup_on_X",
    "pickup_onion_from_X",
    "pickup_onion_from_O",
    "pickup_dish_from_X",
    "pickup_dish_from_D",
    "pickup_soup_from_X",
    "USEFUL_DISH_PICKUP",
    "SOUP_PICKUP",
    "PLACEMENT_IN_POT",
    "delivery",
    "STAY",
    "MOVEMENT",
    "IDLE_MOVEMENT",
    "IDLE_INTERACT_X",
    "IDLE_INTERACT_EMPTY",
)

NEW_EVENTS: tuple[str, ...] = (
    "put_onion_on_X",
    "put_tomato_on_X",
    "put_dish_on_X",
    "put_soup_on_X",
    "pickup_onion_from_X",
    "pickup_onion_from_O",
    "pickup_tomato_from_X",
    "pickup_tomato_from_T",
    "pickup_dish_from_X",
    "pickup_dish_from_D",
    "pickup_soup_from_X",
    "USEFUL_DISH_PICKUP",
    "SOUP_PICKUP",
    "PLACEMENT_IN_POT",
    "viable_placement",
    "optimal_placement",
    "catastrophic_placement",
    "useless_placement",
    "potting_onion",
    "potting_tomato",
    "cook",
    "delivery",
    "deliver_size_two_order",
    "deliver_size_three_order",
    "deliver_useless_order",
    "STAY",
    "MOVEMENT",
    "IDLE_MOVEMENT",
    "IDLE_INTERACT",
)

assert len(OLD_EVENTS) == 17 and len(NEW_EVENTS) == 29


def event_names(old_dynamics: bool) -> tuple[str, ...]:
    return OLD_EVENTS if old_dynamics else NEW_EVENTS


class EventIndex:
    """Name -> slot lookup for one vocabulary; unknown names map to ``None`` (event absent).

    Used at trace time only (Python ints), so the traced code indexes with constants.
    """

    def __init__(self, old_dynamics: bool):
        self.names = event_names(old_dynamics)
        self._idx = {n: i for i, n in enumerate(self.names)}
        # The two "idle interact" slots collapse into one in the new vocabulary.
        if old_dynamics:
            self.idle_counter = self._idx["IDLE_INTERACT_X"]
            self.idle_other = self._idx["IDLE_INTERACT_EMPTY"]
        else:
            self.idle_counter = self.idle_other = self._idx["IDLE_INTERACT"]

    def __len__(self) -> int:
        return len(self.names)

    def get(self, name: str) -> int | None:
        return self._idx.get(name)

    def __getitem__(self, name: str) -> int:
        return self._idx[name]
