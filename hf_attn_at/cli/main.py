"""`hf-attn-at VERB ...`: prepare data, train, explain, reproduce the paper, push to the Hub."""

from __future__ import annotations

import importlib
import logging
import sys
from collections.abc import Sequence

from hf_attn_at._version import __version__

# verb -> (module, help)
COMMANDS: dict[str, tuple[str, str]] = {
    "prepare": ("hf_attn_at.cli.prepare", "load a dataset, build its tokenizer, save both"),
    "train": ("hf_attn_at.cli.train", "train one model with a method (vanilla, attention_at, ...)"),
    "explain": ("hf_attn_at.cli.explain", "attention vs gradient importance report for trained models"),
    "reproduce": ("hf_attn_at.cli.reproduce", "run a grid of tasks x methods x seeds (x eps), then tables"),
    "push": ("hf_attn_at.cli.push", "export a trained run with its model card and upload it (or --dry_run)"),
    "robustness": ("hf_attn_at.cli.robustness", "accuracy under attention/embedding attacks, Jain & Wallace tests"),
}
# Errors that are the user's input or environment, shown as one line instead of a stack trace (ImportError: an
# optional package that a flag needs, e.g. --word_vectors glove-6b-50d).
USER_ERRORS = (ValueError, FileNotFoundError, ConnectionError, NotADirectoryError, ImportError)


def usage() -> str:
    lines = ["usage: hf-attn-at VERB [options]   (hf-attn-at VERB --help for a verb's options)",
             "       hf-attn-at --version", "", "verbs:"]
    lines += [f"  {verb:<10} {help_}" for verb, (_, help_) in COMMANDS.items()]
    return "\n".join(lines)


def log_level_of(argv: Sequence[str]) -> str:
    """The value of the last `--log_level` in `argv` (`"passive"` without one); the verb's parser checks it."""
    level = "passive"
    for i, arg in enumerate(argv):
        if arg == "--log_level" and i + 1 < len(argv):
            level = argv[i + 1]
        elif arg.startswith("--log_level="):
            level = arg.split("=", 1)[1]
    return level


def configure_logging(log_level: str) -> None:
    """Send log records to stderr: hf_attn_at's and transformers' loggers at `log_level` (`--log_level`).

    `"passive"` (and an unknown value, which the verb's parser then refuses) leaves transformers at its own
    default and shows hf_attn_at's INFO lines; other libraries log WARNING and above.
    """
    import transformers

    level = transformers.utils.logging.log_levels.get(log_level)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("hf_attn_at").setLevel(logging.INFO if level is None else level)
    if level is not None:
        transformers.logging.set_verbosity(level)


def destroy_process_group() -> None:
    """Tear down the `torch.distributed` group a verb started under `accelerate launch` or `torchrun`.

    Its gloo/NCCL threads would otherwise outlive the verb and may release tensors while the interpreter shuts down,
    which aborts the process (SIGABRT, "terminate called without an active exception") after the work is done.
    """
    distributed = sys.modules.get("torch.distributed")  # not imported: no group was started
    if distributed is not None and distributed.is_available() and distributed.is_initialized():
        distributed.destroy_process_group()


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(usage())
        return 0 if argv else 2
    if argv[0] in ("-V", "--version"):
        print(f"hf-attn-at {__version__}")
        return 0
    verb, rest = argv[0], argv[1:]
    if verb not in COMMANDS:
        print(f"hf-attn-at: unknown verb {verb!r}; valid verbs: {', '.join(COMMANDS)}", file=sys.stderr)
        return 2
    module_name, _ = COMMANDS[verb]
    configure_logging(log_level_of(rest))
    module = importlib.import_module(module_name)
    try:
        return int(module.main(rest) or 0)
    except USER_ERRORS as err:
        print(f"hf-attn-at {verb}: error: {str(err).strip()}", file=sys.stderr)
        return 2
    finally:
        destroy_process_group()


if __name__ == "__main__":
    sys.exit(main())
