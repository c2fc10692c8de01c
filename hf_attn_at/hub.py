"""Export and Hub upload of the BiLSTM + attention models (their cards: `hf_attn_at.model_card`).

Python (`build_model_card` is `hf_attn_at.model_card`'s)::

    card = build_model_card(model, method="attention_iat", epsilon=1.0, lambda_=1.0, dataset_name="sst",
                            metrics={"accuracy": 0.83}, interpretability={"pearson": 0.71})
    export_for_hub(model, tokenizer, "export/", card)       # the exact folder that would be uploaded
    push_to_hub("runs/sst-iat", "ns/name", dry_run_dir="export/")  # a run folder, see below

Command::

    hf-attn-at push --run_dir RUN_DIR --repo_id ns/name [--private] [--revision REV] [--dry_run DIR]

A run folder (``RUN_DIR``) holds a model saved with ``save_pretrained``, its tokenizer files (without them the
upload warns) and the run's record (``results.json``, ``training_args.json``, ``metrics.json``: see
``hf_attn_at.runs``) from which its card is built (``model_card.card_from_run_dir``; a plain ``Trainer``'s folder
is carded from its optional ``training_args.json`` and ``metrics.json``).

Untrained heads: every bias of a freshly initialised model is zero, and one optimiser step makes the
classifier's output bias non-zero, so an all-zero ``classifier.out_proj.bias`` means "never trained"
(pass ``trained=True`` / ``False`` to state it instead).
"""

from __future__ import annotations

import logging
import os
import tempfile
from pathlib import Path
from typing import Any

from huggingface_hub import CommitInfo, CommitOperationAdd, CommitOperationDelete, HfApi, ModelCard
from huggingface_hub.errors import HFValidationError
from huggingface_hub.utils import validate_repo_id
from transformers import AutoTokenizer, PreTrainedModel, PreTrainedTokenizerBase

from .model_card import card_from_run_dir
from .models.bilstm_attention import add_auto_model
from .runs import load_run_model

logger = logging.getLogger(__name__)

CODE_FILES = ("configuration_bilstm_attention.py", "modeling_bilstm_attention.py")
DEFAULT_COMMIT_MESSAGE = "Upload hf_attn_at model"


def _head_is_untrained(model: PreTrainedModel) -> bool:
    """True when the classifier's output bias is still all zero, as `_init_weights` leaves it."""
    out_proj = getattr(getattr(model, "classifier", None), "out_proj", None)
    return out_proj is not None and out_proj.bias is not None and not out_proj.bias.detach().any()


def export_for_hub(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase | None,
    output_dir: str | os.PathLike,
    card: ModelCard,
    *,
    trained: bool | None = None,
) -> Path:
    """Write the exact folder that would be uploaded and return its path.

    It holds `model.safetensors`, `config.json` (with `auto_map` for `AutoConfig`, the head's Auto class and
    `AutoModel`), the two model code files, the tokenizer files and the card as `README.md`. `output_dir`
    must be absent or empty, so that no stale file is uploaded. Warns when `tokenizer` is `None` and when
    the head looks untrained (`trained=False`, or, with `trained=None`, an all-zero classifier output bias).
    """
    output_dir = Path(output_dir)
    if output_dir.exists() and (not output_dir.is_dir() or any(output_dir.iterdir())):
        raise ValueError(f"output_dir must be absent or an empty folder, got {str(output_dir)!r}")
    if trained is False or (trained is None and _head_is_untrained(model)):
        logger.warning(
            "The classification head of this %s looks untrained (%s): the exported model predicts nothing "
            "useful. Export a trained model, or pass trained=True if this is intended.",
            type(model).__name__,
            "trained=False" if trained is False else "its output bias is still all zero, as initialised",
        )
    if tokenizer is None:
        logger.warning(
            "No tokenizer given: the export has no tokenizer files, and users cannot turn text into the "
            "model's input ids. Pass the tokenizer the model was trained with."
        )
    output_dir.mkdir(parents=True, exist_ok=True)
    add_auto_model(model.config)
    model.save_pretrained(output_dir)
    missing = [name for name in CODE_FILES if not (output_dir / name).is_file()]
    if missing:
        raise RuntimeError(
            f"save_pretrained did not copy {missing} into {output_dir}: is {type(model).__name__} registered "
            "with `register_for_auto_class`?"
        )
    if tokenizer is not None:
        tokenizer.save_pretrained(output_dir)
    card.save(output_dir / "README.md")
    logger.info("exported %s to %s", type(model).__name__, output_dir)
    return output_dir


def check_repo_id(repo_id: Any) -> str:
    """Return `repo_id` if it has the form `namespace/name`, else raise a `ValueError` saying why."""
    expected = "repo_id must be of the form 'namespace/name' (e.g. 'my-user/bilstm-attention-sst')"
    if not isinstance(repo_id, str) or repo_id.count("/") != 1 or "" in repo_id.split("/"):
        raise ValueError(f"{expected}, got {repo_id!r}")
    try:
        validate_repo_id(repo_id)
    except HFValidationError as e:
        raise ValueError(f"{expected}, got {repo_id!r}: {e}") from e
    return repo_id


def load_tokenizer(run_dir: Path) -> PreTrainedTokenizerBase | None:
    """The tokenizer saved in `run_dir`, or `None` when it has none (`tokenizer_config.json`)."""
    if not (run_dir / "tokenizer_config.json").is_file():
        return None
    return AutoTokenizer.from_pretrained(run_dir)


def push_to_hub(
    run_dir_or_model: str | os.PathLike | PreTrainedModel,
    repo_id: str,
    *,
    tokenizer: PreTrainedTokenizerBase | None = None,
    card: ModelCard | None = None,
    private: bool = False,
    revision: str | None = None,
    dry_run_dir: str | os.PathLike | None = None,
    commit_message: str = DEFAULT_COMMIT_MESSAGE,
    token: str | None = None,
    trained: bool | None = None,
) -> CommitInfo | None:
    """Export a model (see `export_for_hub`) and upload it to the Hub model repo `repo_id`.

    Args:
        run_dir_or_model: a run folder (model, tokenizer and optional files, see the module docstring) or a
            model; a model needs `card` (see `build_model_card`) and should come with its `tokenizer`.
        repo_id: `namespace/name`, checked before any work.
        tokenizer, card: override what the run folder holds (a folder without `metrics.json` and
            `training_args.json` needs `card`, or use `card_from_run_dir` with the method settings).
        private: create the repo as private (an existing repo keeps its visibility).
        revision: the branch to commit to (created when missing). The commit makes it hold exactly the export:
            files it held that the export lacks (an earlier upload's tokenizer or weight shards) are deleted in
            the same commit, with a warning naming them (`.gitattributes` is kept; the repo's history keeps
            the rest).
        dry_run_dir: write the folder that would be uploaded there and upload nothing.
        commit_message, token: passed to the Hub.
        trained: see `export_for_hub`.

    Returns:
        the commit's `CommitInfo`, or `None` for a dry run.
    """
    check_repo_id(repo_id)
    if isinstance(run_dir_or_model, PreTrainedModel):
        model = run_dir_or_model
        if card is None:
            raise ValueError("pushing a model object needs `card=` (see build_model_card)")
    else:
        run_dir = Path(run_dir_or_model)
        model = load_run_model(run_dir)
        tokenizer = tokenizer if tokenizer is not None else load_tokenizer(run_dir)
        card = card if card is not None else card_from_run_dir(run_dir, model, repo_id=repo_id)
    if dry_run_dir is not None:
        export_for_hub(model, tokenizer, dry_run_dir, card, trained=trained)
        logger.info("dry run: wrote the upload for %s to %s; nothing was uploaded", repo_id, dry_run_dir)
        return None
    api = HfApi(token=token)
    with tempfile.TemporaryDirectory() as tmp_dir:
        folder = export_for_hub(model, tokenizer, Path(tmp_dir) / "upload", card, trained=trained)
        api.create_repo(repo_id, private=private, exist_ok=True)
        if revision is not None and not revision.startswith("refs/pr/"):
            api.create_branch(repo_id, branch=revision, exist_ok=True)
        uploaded = sorted(path.name for path in folder.iterdir())
        stale = sorted(set(api.list_repo_files(repo_id, revision=revision)) - set(uploaded) - {".gitattributes"})
        if stale:
            logger.warning("%s%s holds files this upload does not have; the commit deletes them (they stay in the "
                           "repo's history): %s", repo_id, f"@{revision}" if revision else "", ", ".join(stale))
        operations = [
            *(CommitOperationAdd(path_in_repo=name, path_or_fileobj=str(folder / name)) for name in uploaded),
            *(CommitOperationDelete(path_in_repo=name) for name in stale),
        ]
        return api.create_commit(repo_id, operations, commit_message=commit_message, revision=revision)
