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


# --- Vectorised event rows --------------------------------------------------------------------
# Each step a cook does exactly one "kind" of thing; an event fires when the kind is one of its
# kinds, the object involved matches (if it names one) and its extra judgement bits are set.
# Building a row as one comparison against these tables keeps the traced step small.
(K_NONE, K_PUT, K_TAKE, K_TAKE_O, K_TAKE_T, K_TAKE_D, K_PICK_SOUP, K_ADD, K_COOK, K_DELIVER,
 K_IDLE_X, K_IDLE_OTHER, K_STAY, K_MOVE) = range(14)
B_USEFUL, B_VIABLE, B_OPTIMAL, B_CATASTROPHIC, B_USELESS, B_SIZE2, B_SIZE3, B_USELESS_DELIVERY = (
    1 << k for k in range(8))
_OBJ = {"onion": 1, "tomato": 2, "dish": 3, "soup": 4}


def _spec(name: str) -> tuple[tuple[int, ...], int, int]:
    """(kinds, object code or -1, required bits) of an event name."""
    for obj, code in _OBJ.items():
        if name == f"put_{obj}_on_X":
            return (K_PUT,), code, 0
        if name == f"pickup_{obj}_from_X":
            return (K_TAKE,), code, 0
        if name == f"potting_{obj}":
            return (K_ADD,), code, 0
    table = {
        "pickup_onion_from_O": ((K_TAKE_O,), -1, 0),
        "pickup_tomato_from_T": ((K_TAKE_T,), -1, 0),
        "pickup_dish_from_D": ((K_TAKE_D,), -1, 0),
        "USEFUL_DISH_PICKUP": ((K_TAKE_D,), -1, B_USEFUL),
        "SOUP_PICKUP": ((K_PICK_SOUP,), -1, 0),
        "PLACEMENT_IN_POT": ((K_ADD,), -1, 0),
        "viable_placement": ((K_ADD,), -1, B_VIABLE),
        "optimal_placement": ((K_ADD,), -1, B_OPTIMAL),
        "catastrophic_placement": ((K_ADD,), -1, B_CATASTROPHIC),
        "useless_placement": ((K_ADD,), -1, B_USELESS),
        "cook": ((K_COOK,), -1, 0),
        "delivery": ((K_DELIVER,), -1, 0),
        "deliver_size_two_order": ((K_DELIVER,), -1, B_SIZE2),
        "deliver_size_three_order": ((K_DELIVER,), -1, B_SIZE3),
        "deliver_useless_order": ((K_DELIVER,), -1, B_USELESS_DELIVERY),
        "STAY": ((K_STAY,), -1, 0),
        "MOVEMENT": ((K_MOVE,), -1, 0),
        "IDLE_MOVEMENT": ((), -1, 0),  # set by movement, not by a kind
        "IDLE_INTERACT_X": ((K_IDLE_X,), -1, 0),
        "IDLE_INTERACT_EMPTY": ((K_IDLE_OTHER,), -1, 0),
        "IDLE_INTERACT": ((K_IDLE_X, K_IDLE_OTHER), -1, 0),
    }
    return table[name]


def event_tables(old_dynamics: bool):
    """(kind bitmask (E,), object (E,), required bits (E,)) int32 numpy arrays."""
    import numpy as np

    specs = [_spec(n) for n in event_names(old_dynamics)]
    kinds = np.array([sum(1 << k for k in s[0]) for s in specs], np.int32)
    objs = np.array([s[1] for s in specs], np.int32)
    bits = np.array([s[2] for s in specs], np.int32)
    return kinds, objs, bits
