"""`coplay <system> <command> [options]` — the command-line entry point.

Each command lives next to the code it drives and parses its own options (typed dataclasses
via tyro). This module only dispatches, importing a command's module when it is called so that
`coplay --help` stays instant and one system's import errors never break the other.
"""

from __future__ import annotations

import importlib
import sys

from coplay.runs import RunError  # the commands themselves are imported when called

# (system, command) -> "module:function"; the function takes the remaining argv.
COMMANDS: dict[tuple[str, str], tuple[str, str]] = {
    ("ipd", "train"): ("coplay.experiments.ipd.cli:train",
                       "train GRU agents by A2C or PPI in the IPD"),
    ("ipd", "eval"): ("coplay.experiments.ipd.cli:evaluate", "evaluate a trained IPD run"),
    ("ipd", "report"): ("coplay.experiments.ipd.cli:report", "plots and report.md of IPD runs"),
    ("ipd", "axelrod"): ("coplay.experiments.ipd.cli:axelrod",
                         "learners vs the Axelrod library: tournament, Moran, probes"),
    ("overcooked", "render"): ("coplay.envs.overcooked.cli:render", "episode -> GIF"),
    ("overcooked", "play"): ("coplay.envs.overcooked.cli:play", "steer a cook from the terminal"),
    ("overcooked", "train"): ("coplay.experiments.overcooked.cli:train",
                              "train a self-play pair by PPO on a layout"),
    ("coot", "collect"): ("coplay.experiments.coot.cli:collect_cmd",
                          "roll out the training pool into a CooT dataset"),
    ("coot", "train"): ("coplay.experiments.coot.cli:train_cmd",
                        "train the Coordination Transformer on a dataset"),
    ("coot", "bc"): ("coplay.experiments.coot.cli:bc_cmd", "train the BC baseline on a dataset"),
    ("coot", "dagger"): ("coplay.experiments.coot.cli:dagger_cmd",
                         "fine-tune a CooT on its own play, labelled by best responses"),
    ("coot", "eval"): ("coplay.experiments.coot.cli:eval_cmd",
                       "CooT and baselines vs held-out partners: eval.json + report.md"),
    ("coot", "relabel"): ("coplay.experiments.coot.cli:relabel_cmd",
                          "another agent's games, best-response labels, added to a dataset"),
    ("coot", "diagnose"): ("coplay.experiments.coot.cli:diagnose_cmd",
                           "why a CooT does (not) coordinate: its contexts, its agreement"),
    ("coot", "report"): ("coplay.experiments.coot.cli:report_cmd",
                         "rewrite an evaluation's report.md and PNGs"),
    ("populations", "train"): ("coplay.experiments.populations.cli:train",
                               "train hidden-utility pairs, MEP stage 1 or stage 2"),
    ("populations", "select"): ("coplay.experiments.populations.cli:select",
                                "k-DPP evaluation partners and a greedy training pool"),
    ("populations", "show"): ("coplay.experiments.populations.cli:show", "a population's members"),
    ("study", "serve"): ("coplay.web.cli:serve", "serve a human-agent study in the browser"),
    ("study", "export"): ("coplay.web.cli:export", "a study's trajectories (.npz) and answers.csv"),
    ("study", "report"): ("coplay.web.cli:report", "a study's report.md: returns, preferences"),
    ("zoo", "list"): ("coplay.experiments.zoo.cli:list_", "entries of the model zoo (zoo/)"),
    ("zoo", "verify"): ("coplay.experiments.zoo.cli:verify",
                        "check every zoo file's sha256 (non-zero exit if damaged)"),
    ("zoo", "export"): ("coplay.experiments.zoo.cli:export",
                        "a population's members (actor weights, fp16) into the zoo"),
}


def _usage(system: str | None = None) -> str:
    lines = ["usage: coplay <system> <command> [options]   (add --help after a command)", ""]
    for (name, command), (_, doc) in sorted(COMMANDS.items()):
        if system is None or name == system:
            lines.append(f"  coplay {name} {command:<10} {doc}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    systems = {system for system, _ in COMMANDS}
    if argv and argv[0] in systems and (len(argv) == 1 or argv[1] in ("-h", "--help")):
        print(_usage(argv[0]))  # `coplay populations --help`: that system's commands
        return 0 if len(argv) > 1 else 2
    if len(argv) < 2 or argv[0] in ("-h", "--help"):
        print(_usage())
        return 0 if argv and argv[0] in ("-h", "--help") else 2
    key = (argv[0], argv[1])
    if key not in COMMANDS:
        print(f"coplay: unknown command '{argv[0]} {argv[1]}'\n", file=sys.stderr)
        print(_usage(), file=sys.stderr)
        return 2
    target, _ = COMMANDS[key]
    module_name, fn_name = target.split(":")
    fn = getattr(importlib.import_module(module_name), fn_name)
    prog = f"coplay {argv[0]} {argv[1]}"
    try:
        result = fn(argv[2:], prog=prog)
    except (ValueError, RunError) as e:  # config, layout and run-folder errors: no traceback
        print(f"{prog}: error: {e}", file=sys.stderr)
        return 2
    return int(result or 0)


if __name__ == "__main__":
    sys.exit(main())
