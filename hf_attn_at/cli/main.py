"""`hf-attn-at VERB ...`: prepare data, train, explain, reproduce the paper, push to the Hub."""

from __future__ import annotations

import importlib
import logging
import sys
from collections.abc import Sequence

from hf_attn_at._version import __version__

# verb -> (module, keeps the verb in argv, help)
COMMANDS: dict[str, tuple[str, bool, str]] = {
    "prepare": ("hf_attn_at.data.__main__", True, "load a dataset, build its tokenizer, save both"),
    "train": ("hf_attn_at.cli.train", False, "train one model with a method (vanilla, attention_at, ...)"),
    "explain": ("hf_attn_at.interpret.command", False, "attention vs gradient importance report for trained models"),
    "reproduce": ("hf_attn_at.cli.reproduce", False, "run a grid of tasks x methods x seeds (x eps), then tables"),
    "push": ("hf_attn_at.hub", True, "export a trained run with its model card and upload it (or --dry_run)"),
    "robustness": ("hf_attn_at.cli.robustness", False, "accuracy under attention/embedding attacks, Jain & Wallace tests"),
}
# Errors that are the user's input or environment, shown as one line instead of a stack trace (ImportError: an
# optional package that a flag needs, e.g. --word_vectors glove-6b-50d).
USER_ERRORS = (ValueError, FileNotFoundError, ConnectionError, NotADirectoryError, ImportError)


def usage() -> str:
    lines = ["usage: hf-attn-at VERB [options]   (hf-attn-at VERB --help for a verb's options)",
             "       hf-attn-at --version", "", "verbs:"]
    lines += [f"  {verb:<10} {help_}" for verb, (_, _, help_) in COMMANDS.items()]
    return "\n".join(lines)


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
    module_name, keep_verb, _ = COMMANDS[verb]
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    module = importlib.import_module(module_name)
    try:
        return int(module.main([verb, *rest] if keep_verb else rest) or 0)
    except USER_ERRORS as err:
        print(f"hf-attn-at {verb}: error: {err}", file=sys.stderr)
        return 2
    finally:
        destroy_process_group()


if __name__ == "__main__":
    sys.exit(main())
