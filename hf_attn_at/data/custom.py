"""A user's own dataset (local files or any Hub dataset) in the shared column layout.

`load_custom` reads csv / tsv / json / jsonl / parquet files (one per split) or a Hub dataset, maps the
user's columns to ``text``, optional ``text_pair`` and ``label`` (a `ClassLabel`), drops rows with empty
text (logged), and carves a seeded validation split from train when none is given. The vocabulary and
tokenization are then the built-in tasks' (:func:`hf_attn_at.data.prepare_dataset`). See ``docs/DATA.md``.
"""

from __future__ import annotations

import csv
import functools
import json
import logging
import re
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import datasets
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ._common import load_hub, require_file

logger = logging.getLogger(__name__)

# File suffix -> (datasets builder, builder options).
FORMATS: dict[str, tuple[str, dict[str, Any]]] = {
    ".csv": ("csv", {"keep_default_na": False}),
    ".tsv": ("csv", {"delimiter": "\t", "keep_default_na": False}),
    ".json": ("json", {}),  # read by `_read_json` (line numbers in errors, value types checked)
    ".jsonl": ("json", {}),
    ".parquet": ("parquet", {}),
}
# Column names inferred when the user gives none, tried in order.
PAIR_COLUMNS = (("sentence1", "sentence2"), ("premise", "hypothesis"), ("text", "text_pair"),
                ("question1", "question2"))
TEXT_COLUMNS = ("text", "sentence", "content", "review", "document")
LABEL_COLUMNS = ("label", "labels", "class", "target", "category")
# Hub split names accepted for the validation split.
VALIDATION_NAMES = ("validation", "valid", "dev")
# Percent of train held out as validation when there is no validation split (`--validation_split_percentage`).
DEFAULT_VALIDATION_PERCENTAGE = 10


def builder_of(suffix: str) -> str:
    """The `datasets` builder reading files with this suffix (``csv``, ``json`` or ``parquet``)."""
    return FORMATS[suffix][0]


def _check_file(path: str | Path) -> tuple[Path, str, dict[str, Any]]:
    """The file, its builder and options; `ValueError` for a directory, an unknown suffix, an empty or non-UTF-8
    file, a csv / tsv / parquet file whose header repeats a column name and a csv / tsv row that is not one
    cell per column (see `_check_rows`)."""
    path = require_file(path, "a data file (csv, tsv, json, jsonl or parquet)")
    if path.is_dir():
        raise ValueError(f"{path} is a directory: expected a data file (csv, tsv, json, jsonl or parquet)")
    suffix = path.suffix.lower()
    if suffix not in FORMATS:
        raise ValueError(f"{path}: unsupported file type {suffix or '(none)'!r}; allowed: {', '.join(FORMATS)}")
    if path.stat().st_size == 0:
        raise ValueError(f"{path} is empty")
    if suffix != ".parquet":
        with path.open("rb") as f:
            nonblank = 0
            for number, line in enumerate(f, start=1):
                try:
                    nonblank += bool(line.decode("utf-8").strip())
                except UnicodeDecodeError as err:
                    raise ValueError(
                        f"{path}, line {number}: not valid UTF-8 ({err.reason} at byte {err.start} of the line); "
                        "re-encode the file as UTF-8, e.g. `iconv -f latin1 -t utf-8 in.csv > out.csv`"
                    ) from err
        if not nonblank:
            raise ValueError(f"{path} is empty (only blank lines)")
        if nonblank == 1 and builder_of(suffix) == "csv":
            raise ValueError(f"{path} is empty (a header but no rows)")
    builder, options = FORMATS[suffix]
    if builder == "csv":
        header = _check_rows(path, options.get("delimiter", ","))
        _check_unique(header, path)
        # Every cell as the string in the file: a column of numbers stays text ("007", "0.10", "1e3").
        options = {**options, "features": datasets.Features({name: datasets.Value("string") for name in header})}
    elif builder == "parquet":
        try:
            names = pq.read_schema(path).names
        except (OSError, ValueError) as err:  # pyarrow's errors on a file that is not parquet
            raise ValueError(f"{path}: cannot be read as parquet: {err}") from err
        _check_unique(names, path)
    return path, builder, options


def _csv_rows(path: Path, delimiter: str) -> Iterator[tuple[int, list[str]]]:
    """The non-blank rows of a csv / tsv file, header first, each with the line where it starts (a quoted cell
    may span lines); blank lines are skipped, as pandas skips them. `ValueError` naming the lines of malformed
    quoting (an unbalanced quote: the following rows would become one cell)."""
    limit = csv.field_size_limit(sys.maxsize)  # a long text is one cell (the default limit is 128 KiB)
    try:
        with path.open(encoding="utf-8-sig", newline="") as f:
            reader = csv.reader(f, delimiter=delimiter, strict=True)
            start = 1
            try:
                for row in reader:
                    if any(cell.strip() for cell in row) or len(row) > 1:
                        yield start, row
                    start = reader.line_num + 1
            except csv.Error as err:
                lines = f"line {start}" if reader.line_num <= start else f"lines {start}-{reader.line_num}"
                reason = str(err).replace("\t", "\\t")
                raise ValueError(
                    f"{path}, {lines}: malformed quoting ({reason}); a quoted cell ends with a quote right "
                    "before the delimiter or the line end, and a quote inside it is doubled (\"\")"
                ) from None
    finally:
        csv.field_size_limit(limit)


def _check_rows(path: Path, delimiter: str) -> list[str]:
    """The header of a csv / tsv file whose every row has one cell per column; `ValueError` naming the line of
    a row with more or fewer cells (an unquoted delimiter in a text: pandas would take the first cells as an
    index) and of malformed quoting (`_csv_rows`)."""
    name = {",": "a comma", "\t": "a tab"}.get(delimiter, repr(delimiter))
    header: list[str] | None = None
    for start, row in _csv_rows(path, delimiter):
        if header is None:
            header = row
        elif len(row) != len(header):
            cells = f"{len(row)} cell{'s' * (len(row) != 1)}"
            raise ValueError(f"{path}, line {start}: {cells}, but the header has {len(header)} {header}: every row "
                             f"needs one cell per column (quote a text that contains {name})")
    return header or []


def _line_of(path: Path, column: str, value: str) -> int | None:
    """The line where the first row of a csv / tsv file with `value` in `column` starts; `None` if none has."""
    rows = _csv_rows(path, FORMATS[path.suffix.lower()][1].get("delimiter", ","))
    try:
        header = next(rows)[1]
        index = header.index(column)
        return next((start for start, row in rows if row[index] == value), None)
    finally:
        rows.close()


def _check_unique(columns: list[str], where: str | Path) -> None:
    """`ValueError` naming the column names that occur more than once (readers would rename or drop them)."""
    repeated = sorted({c for c in columns if columns.count(c) > 1})
    if repeated:
        raise ValueError(f"{where}: column name(s) {repeated} occur more than once in the header {columns}; "
                         "give every column a distinct name")


def _kind(value: Any) -> str:
    """The kind of a JSON / arrow value: ``null``, ``bool``, ``int``, ``float`` (``1.0`` too), ``str``, else
    its type."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float"
    if isinstance(value, str):
        return "str"
    return type(value).__name__


# Where each kind of value first occurs in a column of a JSON file, a parquet file or a Hub split: kind ->
# (place, value). JSON kinds are `_kind`'s; an arrow column has one type: ``str`` for strings, else the type
# (``int64``).
Kinds = dict[str, tuple[str, Any]]
# Arrow integer types: labels of these types are class ids (as JSON integers are).
_INT_TYPES = tuple(f"{sign}int{bits}" for sign in ("", "u") for bits in (8, 16, 32, 64))


def _read_json(path: Path) -> tuple[datasets.Dataset, dict[str, Kinds]]:
    """Rows of a JSON Lines file (or a .json list of objects), and for each column where each kind of value
    first occurs (see `_check_cells`).

    A column mixing kinds is stored as strings. `ValueError` on a single JSON object (e.g. columns of lists)
    and on a key repeated within a row.
    """
    text = path.read_text(encoding="utf-8")
    rows: list[tuple[int, Any]] = []
    stripped = text.lstrip()
    repeated: list[str] = []  # keys repeated within one object, filled by `pairs`

    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        keys = [k for k, _ in items]
        repeated.extend(sorted({k for k in keys if keys.count(k) > 1}))
        return dict(items)

    if stripped.startswith("{"):
        try:
            whole = json.loads(text)
        except json.JSONDecodeError:  # several objects: JSON Lines
            whole = None
        columnar = isinstance(whole, dict) and all(isinstance(v, list) for v in whole.values())
        if isinstance(whole, dict) and (columnar or len(text.strip().splitlines()) > 1):
            what = "a JSON object of columns" if columnar else "a single JSON object over several lines"
            raise ValueError(f"{path} is {what} (keys {list(whole)}); that layout is not supported: allowed are "
                             "JSON Lines (one object per row, a line each) or, in a .json file, an array of row objects")
    if path.suffix.lower() == ".json" and stripped.startswith("["):
        try:
            rows = list(enumerate(json.loads(text, object_pairs_hook=pairs), start=1))
        except json.JSONDecodeError as err:
            raise ValueError(f"{path}, line {err.lineno}: invalid JSON ({err.msg})") from err
        if repeated:
            raise ValueError(f"{path}: key(s) {repeated} occur more than once in one object; "
                             "give every column a distinct name")
        unit = "item"
    else:
        for number, line in enumerate(text.splitlines(), start=1):
            if line.strip():
                try:
                    rows.append((number, json.loads(line, object_pairs_hook=pairs)))
                except json.JSONDecodeError as err:
                    raise ValueError(f"{path}, line {number}: invalid JSON ({err.msg})") from err
                if repeated:
                    raise ValueError(f"{path}, line {number}: key(s) {repeated} occur more than once in one "
                                     "object; give every column a distinct name")
        unit = "line"
    if not rows:
        raise ValueError(f"{path} is empty (no rows)")
    columns: dict[str, list[Any]] = {}
    for i, (number, row) in enumerate(rows):
        if not isinstance(row, dict):
            raise ValueError(f"{path}, {unit} {number}: expected a JSON object per row, got {type(row).__name__}")
        for key in row.keys() - columns.keys():
            columns[key] = [None] * i
        for key, values in columns.items():
            values.append(row.get(key))
    kinds: dict[str, Kinds] = {}
    for key, values in columns.items():
        first = kinds[key] = {}
        for (number, _), value in zip(rows, values, strict=True):
            if value is not None:
                first.setdefault(_kind(value), (f"{path}, {unit} {number}", value))
        if len({k if k != "float" else "int" for k in first}) > 1:
            columns[key] = [None if v is None else str(v) for v in values]
    return datasets.Dataset.from_dict(columns), kinds


def _check_cells(kinds: dict[str, Kinds], columns: tuple[str, str | None, str]) -> None:
    """`ValueError` on a JSON text cell that is not a string and on a label column mixing value types."""
    text_column, text_pair_column, label_column = columns
    for column in (text_column, text_pair_column):
        for kind, (where, value) in kinds.get(column, {}).items():
            if kind != "str":
                raise ValueError(f"{where}: text column {column!r} holds {kind} {value!r}, not a string; "
                                 "text cells must be strings")
    first = kinds.get(label_column, {})
    if len({k if k != "float" else "int" for k in first}) > 1:
        seen = "; ".join(f"{kind} (first at {where}: {value!r})" for kind, (where, value) in first.items())
        raise ValueError(f"label column {label_column!r} mixes label types: {seen}; use all strings or all integers")


def _check_label_types(kinds: Kinds, label_column: str) -> None:
    """`ValueError` at the first label of a JSON or parquet file or a Hub split that is neither a string nor
    an integer (a float such as ``1.0``, a bool, a list): `load_custom` takes classes from exact values
    only."""
    for kind, (where, value) in kinds.items():
        if kind not in ("str", "int", *_INT_TYPES):
            raise ValueError(f"{where}: label {value!r} in column {label_column!r} is a {kind}; labels must "
                             "be strings or integers (class ids)")


def _column_kinds(ds: datasets.Dataset, where: str) -> dict[str, Kinds]:
    """For each column of a typed dataset (a parquet file, a Hub split) its type with its first non-null value
    and that value's row (``where, row N``): an arrow column has one type."""
    kinds: dict[str, Kinds] = {}
    for name, feature in ds.features.items():
        kind = getattr(feature, "dtype", type(feature).__name__)
        column = ds.with_format("arrow")[name]  # the stored values: nothing is decoded (an image stays bytes)
        row = pc.index(column.is_valid(), True).as_py()
        if row >= 0:
            kind = "str" if kind in ("string", "large_string") else kind
            kinds[name] = {kind: (f"{where}, row {row + 1}", column[row].as_py())}
        else:
            kinds[name] = {}
    return kinds


def _load_file(path: str | Path) -> tuple[datasets.Dataset, dict[str, Kinds]]:
    """One file as a `Dataset` (csv / tsv cells as strings), and for a JSON or parquet file where each kind of value
    first occurs per column (see `_read_json`)."""
    path, builder, options = _check_file(path)
    if builder == "json":
        return _read_json(path)
    try:
        ds = datasets.load_dataset(builder, data_files={"data": str(path)}, split="data", **options)
    except (datasets.exceptions.DatasetGenerationError, ValueError) as err:
        cause = err.__cause__ or err
        raise ValueError(f"{path}: cannot be read as {path.suffix.lstrip('.')}: {cause}") from err
    if len(ds) == 0:
        raise ValueError(f"{path} is empty (a header but no rows)")
    if builder != "parquet":
        return ds, {}  # csv / tsv: every cell is a string
    return ds, _column_kinds(ds, str(path))


def _resolve_columns(
    columns: list[str], text_column: str | None, text_pair_column: str | None, label_column: str | None,
    where: str,
) -> tuple[str, str | None, str]:
    """The (text, text_pair, label) columns: the given ones, checked, or inferred from common names."""
    for flag, name in (("--text_column", text_column), ("--text_pair_column", text_pair_column),
                       ("--label_column", label_column)):
        if name is not None and name not in columns:
            raise ValueError(f"{flag} {name!r} is not a column of {where}; its columns are {columns}")
    if text_column is None:
        pair = next((p for p in PAIR_COLUMNS if p[0] in columns and p[1] in columns), None)
        if pair is not None:
            text_column = pair[0]
            text_pair_column = text_pair_column or pair[1]
        else:
            text_column = next((c for c in TEXT_COLUMNS if c in columns), None)
        if text_column is None:
            raise ValueError(f"cannot infer the text column of {where}: none of {list(TEXT_COLUMNS)} or the pairs "
                             f"{[list(p) for p in PAIR_COLUMNS]}; give --text_column; its columns are {columns}")
    if label_column is None:
        label_column = next((c for c in LABEL_COLUMNS if c in columns), None)
        if label_column is None:
            raise ValueError(f"cannot infer the label column of {where}: none of {list(LABEL_COLUMNS)}; "
                             f"give --label_column; its columns are {columns}")
    if label_column in (text_column, text_pair_column):
        raise ValueError(f"the label column {label_column!r} is also a text column")
    return text_column, text_pair_column, label_column


_INT = re.compile(r"[+-]?\d+")
_DECIMAL = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")


def text_kind(text: str) -> str:
    """The kind of a label written as text (a csv/tsv cell): `int` for an integer in decimal (`"1"`, `"007"`),
    `float` for another decimal number (`"1.0"`, `"2.5"`, `"1e3"`), else `str`."""
    text = text.strip()
    return "int" if _INT.fullmatch(text) else "float" if _DECIMAL.fullmatch(text) else "str"


def _label_name(value: Any, kind: str) -> str:
    """A label as its class name: an integer (``1``, ``"+1"``, ``"01"``) in decimal, exactly (``int``, never
    through a float, which would merge integers beyond 2**53); a string as it is."""
    return str(int(value)) if kind == "int" else value


def _label_names(
    splits: Mapping[str, datasets.Dataset], label_column: str, where: Mapping[str, str],
    class_names: list[str] | None = None, files: Mapping[str, Path] | None = None,
) -> tuple[list[str], str]:
    """Class names (the sorted training labels, as strings) and the label kind (``int`` or ``str``).

    `ValueError` naming the split's file (or Hub split, `where`; with the line for a csv / tsv file of `files`)
    and the value on labels that are neither, on two spellings of one integer (``"01"`` and ``"1"``), on a
    string label with leading or trailing whitespace (unless it is one of the Hub `class_names`), on mixed
    kinds, on a single training class and on labels that only evaluation splits have.
    """

    def place(split: str, value: Any) -> str:
        """`where[split]`, with the line of the value's first row when the split is a csv / tsv file."""
        path = (files or {}).get(split)
        if path is None or builder_of(path.suffix.lower()) != "csv" or not isinstance(value, str):
            return where[split]
        line = _line_of(path, label_column, value)
        return where[split] if line is None else f"{where[split]}, line {line}"

    kinds: dict[str, tuple[str, Any]] = {}
    for split, ds in splits.items():
        for value in ds["label"]:
            kind = _kind(value)
            if kind == "str":
                kind = text_kind(value)  # csv / tsv cells are strings: "1" is a class id, "1.0" a float
            if kind not in ("int", "str"):
                raise ValueError(f"{place(split, value)}: label {value!r} in column {label_column!r} is a {kind}; "
                                 "labels must be strings or integers (class ids)")
            if kind == "str" and value != value.strip() and value not in (class_names or ()):
                raise ValueError(f"{place(split, value)}: label {value!r} in column {label_column!r} has leading or "
                                 "trailing whitespace, which would make it a class apart from "
                                 f"{value.strip()!r}; remove it")
            kinds.setdefault(kind, (split, value))
    if len(kinds) > 1:
        seen = "; ".join(f"{kind} (first in {place(split, value)}: {value!r})" for kind, (split, value) in kinds.items())
        raise ValueError(f"label column {label_column!r} mixes label types: {seen}; use all strings or all integers")
    kind = next(iter(kinds))
    if kind == "int":  # csv / tsv cells: "01", "+1" and "1" would silently be one class
        spellings: dict[str, tuple[str, str]] = {}
        for split, ds in splits.items():
            for value in dict.fromkeys(v for v in ds["label"] if isinstance(v, str)):
                first = spellings.setdefault(_label_name(value, kind), (value, split))
                if first[0] != value:
                    raise ValueError(f"labels {first[0]!r} (in {place(first[1], first[0])}) and {value!r} (in "
                                     f"{place(split, value)}) in column "
                                     f"{label_column!r} are both class {_label_name(value, kind)}; write each class "
                                     "one way")
    names = sorted({_label_name(v, kind) for v in splits["train"]["label"]}, key=int if kind == "int" else str)
    if len(names) < 2:
        raise ValueError(f"label column {label_column!r} has a single class ({names[0]!r}) in the training data; "
                         "classification needs at least 2 classes")
    for split, ds in splits.items():
        unseen = sorted({_label_name(v, kind) for v in ds["label"]} - set(names))
        if unseen:
            raise ValueError(f"{split} has labels {unseen} that the training data lacks; training labels: {names}")
    return names, kind


def _standardize(
    ds: datasets.Dataset, split: str, text_column: str, text_pair_column: str | None, label_column: str,
    minus_one_is_missing: bool,
) -> datasets.Dataset:
    """Rename to text / text_pair / label, keep only those, drop rows with empty text or no label (logged):
    text or a label that is empty or only whitespace, a null label and, with `minus_one_is_missing`, -1."""
    keep = {text_column: "text", label_column: "label"}
    if text_pair_column is not None:
        keep[text_pair_column] = "text_pair"
    ds = ds.select_columns(list(keep))
    text_names = [c for c in keep if keep[c] != "label"]
    # Missing (null) text becomes "" (other non-strings are refused before, by `_check_cells`).
    ds = ds.map(lambda b: {c: ["" if t is None else str(t) for t in b[c]] for c in text_names}, batched=True,
                features=datasets.Features({**ds.features, **{c: datasets.Value("string") for c in text_names}}),
                desc=f"{split}: texts")
    before = len(ds)
    ds = ds.filter(lambda b: [all(b[c][i].strip() for c in text_names) for i in range(len(b[label_column]))],
                   batched=True, desc=f"{split}: empty texts")
    if len(ds) < before:
        logger.warning("%s: dropped %d of %d rows with empty text", split, before - len(ds), before)
    before = len(ds)

    def missing(value: Any) -> bool:
        blank = isinstance(value, str) and not value.strip()
        return value is None or blank or (minus_one_is_missing and value == -1)

    ds = ds.filter(lambda b: [not missing(v) for v in b[label_column]], batched=True,
                   desc=f"{split}: missing labels")
    if len(ds) < before:
        logger.warning("%s: dropped %d of %d rows without a label (%s)", split, before - len(ds), before,
                       "empty, null or -1" if minus_one_is_missing else "empty or null")
    return ds.rename_columns(keep)


def load_custom(
    train_file: str | Path | None = None,
    validation_file: str | Path | None = None,
    test_file: str | Path | None = None,
    dataset_name: str | None = None,
    dataset_config_name: str | None = None,
    text_column: str | None = None,
    text_pair_column: str | None = None,
    label_column: str | None = None,
    validation_split_percentage: int = DEFAULT_VALIDATION_PERCENTAGE,
    seed: int = 42,
    return_columns: bool = False,
) -> datasets.DatasetDict | tuple[datasets.DatasetDict, tuple[str, str | None, str]]:
    """Load a user's dataset as a `DatasetDict` with ``text``, optional ``text_pair`` and ``label`` (`ClassLabel`).

    Args:
        train_file, validation_file, test_file (`str`, *optional*): csv, tsv, json, jsonl or parquet files
            (UTF-8); ``train_file`` is required unless ``dataset_name`` is given.
        dataset_name, dataset_config_name (`str`, *optional*): a dataset for `datasets.load_dataset`
            (its ``train`` split and ``validation``/``valid``/``dev`` and ``test`` where present).
        text_column, text_pair_column, label_column (`str`, *optional*): the user's column names; inferred
            when obvious (``text``/``sentence``, ``sentence1``/``sentence2``, ``premise``/``hypothesis``,
            ``label``).
        validation_split_percentage (`int`, *optional*, defaults to 10): share of train held out (stratified,
            seeded) as validation when there is no validation split (another value with one is refused).
        seed (`int`, *optional*, defaults to 42): seed of that split.
        return_columns (`bool`, *optional*, defaults to False): also return the (text, text_pair, label)
            column names used, inferred ones included.

    Returns:
        Splits ``train``, ``validation`` and, when given, ``test``. Labels are class ids into the sorted
        training labels (a Hub `ClassLabel` keeps its own names and order); ``features["label"].names``
        keeps the original values as strings.
    """
    if (train_file is None) == (dataset_name is None):
        raise ValueError("give exactly one data source: train_file (with optional validation_file/test_file) "
                         f"or dataset_name; got train_file={train_file!r}, dataset_name={dataset_name!r}")
    if not 0 < validation_split_percentage < 100:
        raise ValueError(f"validation_split_percentage must be in 1..99, got {validation_split_percentage!r}")
    raw: dict[str, datasets.Dataset] = {}
    where: dict[str, str] = {}
    files: dict[str, Path] = {}  # split -> its file (error messages name a csv row's line)
    kinds: dict[str, dict[str, Kinds]] = {}  # split -> column -> where each kind of value first occurs (json)
    if train_file is not None:
        for split, path in (("train", train_file), ("validation", validation_file), ("test", test_file)):
            if path is not None:
                (raw[split], kinds[split]), where[split], files[split] = _load_file(path), str(path), Path(path)
    else:
        if validation_file is not None or test_file is not None:
            raise ValueError("validation_file/test_file go with train_file, not with dataset_name")
        hub = load_hub(dataset_name, dataset_config_name)
        name = dataset_name + (f" ({dataset_config_name})" if dataset_config_name else "")
        if "train" not in hub:
            raise ValueError(f"{name} has no 'train' split; its splits are {list(hub)}")
        raw["train"] = hub["train"]
        validation = next((s for s in VALIDATION_NAMES if s in hub), None)
        if validation is not None:
            raw["validation"] = hub[validation]
        if "test" in hub:
            raw["test"] = hub["test"]
        where = {split: f"{name} split {split!r}" for split in raw}
        kinds = {split: _column_kinds(ds, where[split]) for split, ds in raw.items()}  # checked as parquet
    if "validation" in raw and validation_split_percentage != DEFAULT_VALIDATION_PERCENTAGE:
        raise ValueError(f"--validation_split_percentage {validation_split_percentage} holds out part of "
                         "train when there is no validation split, but there is one "
                         f"({where['validation']}): drop it")

    text_column, text_pair_column, label_column = _resolve_columns(
        raw["train"].column_names, text_column, text_pair_column, label_column, where["train"]
    )
    logger.info("columns: text=%r, text_pair=%r, label=%r", text_column, text_pair_column, label_column)
    splits: dict[str, datasets.Dataset] = {}
    class_names: list[str] | None = None  # a Hub ClassLabel's names, kept in their order
    for split, ds in raw.items():
        needed = [c for c in (text_column, text_pair_column, label_column) if c is not None]
        missing = [c for c in needed if c not in ds.column_names]
        if missing:
            raise ValueError(f"{where[split]} lacks the column(s) {missing}; its columns are {ds.column_names}")
        _check_cells(kinds.get(split, {}), (text_column, text_pair_column, label_column))
        _check_label_types(kinds.get(split, {}).get(label_column, {}), label_column)
        class_label = ds.features[label_column] if isinstance(ds.features[label_column], datasets.ClassLabel) \
            else None
        ds = _standardize(ds, split, text_column, text_pair_column, label_column, class_label is not None)
        if class_label is not None:  # Hub ClassLabel: keep its names
            class_names = class_names or list(class_label.names)
            ds = ds.map(lambda b, cl=class_label: {"label": [cl.int2str(int(v)) for v in b["label"]]}, batched=True,
                        features=datasets.Features({**ds.features, "label": datasets.Value("string")}))
        if len(ds) == 0:
            if split == "train":
                raise ValueError(f"{where[split]} has no rows with text and a label")
            logger.warning("%s: no labelled rows left (e.g. an unlabelled test split): dropping it", split)
            continue
        splits[split] = ds

    names, kind = _label_names(splits, label_column, where, class_names, files)
    if class_names is not None and set(names) <= set(class_names):
        names = class_names
    label_feature = datasets.ClassLabel(names=names)
    features = {"text": datasets.Value("string"), "label": label_feature}
    if text_pair_column is not None:
        features["text_pair"] = datasets.Value("string")
    out = {}
    for split, ds in splits.items():
        ds = ds.cast_column("label", datasets.Value("string")).map(
            lambda b: {"label": [label_feature.str2int(_label_name(v, kind)) for v in b["label"]]},
            batched=True, features=datasets.Features({c: features[c] for c in ds.column_names}),
            desc=f"{split}: labels",
        )
        out[split] = ds
    dsd = datasets.DatasetDict(out)
    if "validation" not in dsd:
        dsd = _carve_validation(dsd, validation_split_percentage, seed, where["train"])
    if "test" not in dsd:
        logger.warning("no test split (no test file or Hub test split): test metrics and agreement are "
                       "reported on the validation split")
    logger.info("custom data: %s; labels %s", ", ".join(f"{s} {len(d)}" for s, d in dsd.items()), names)
    return (dsd, (text_column, text_pair_column, label_column)) if return_columns else dsd


@functools.cache
def has_test_split(dataset_name: str, dataset_config_name: str | None = None) -> bool:
    """Whether `load_custom(dataset_name=..., dataset_config_name=...)` has a ``test`` split (the dataset is loaded
    through `datasets.load_dataset`, whose cache the run's own load then reuses)."""
    return "test" in load_hub(dataset_name, dataset_config_name)


def _carve_validation(dsd: datasets.DatasetDict, percentage: int, seed: int, where: str) -> datasets.DatasetDict:
    """Hold out ``percentage`` % of train as validation (stratified when every class allows it); a class whose
    rows would all be held out stays in train (warning). `ValueError` when nothing is left to hold out, a warning
    when validation has a single class (a stratified split of imbalanced data can give that)."""
    train = dsd["train"]
    test_size = percentage / 100
    try:
        parts = train.train_test_split(test_size=test_size, seed=seed, stratify_by_column="label")
    except ValueError:  # a class too small to stratify
        parts = train.train_test_split(test_size=test_size, seed=seed)
    held_out = set(train["label"]) - set(parts["train"]["label"])
    if held_out:  # a class whose rows all went to validation would never be trained on: its rows stay in train
        back = {i for i, label in enumerate(parts["test"]["label"]) if label in held_out}
        names = train.features["label"].names
        logger.warning("%s: class(es) %s have too few rows to hold out for validation: their %d row(s) stay in train",
                       where, [names[label] for label in sorted(held_out)], len(back))
        parts = datasets.DatasetDict({
            "train": datasets.concatenate_datasets([parts["train"], parts["test"].select(sorted(back))]),
            "test": parts["test"].select([i for i in range(len(parts["test"])) if i not in back]),
        })
    remedy = "add rows, change --validation_split_percentage or give a --validation_file"
    if len(parts["train"]) == 0 or len(parts["test"]) == 0:
        raise ValueError(f"{where}: its {len(train)} labelled rows are too few to hold out {percentage}% as validation "
                         f"with every class kept in train: {remedy}")
    classes = {split: len(set(part["label"])) for split, part in parts.items()}
    split_sizes = (f"holding out {percentage}% of its {len(train)} labelled rows ({len(set(train['label']))} classes) "
                   f"as validation leaves train {len(parts['train'])} row(s) of {classes['train']} class(es) and "
                   f"validation {len(parts['test'])} row(s) of {classes['test']} class(es)")
    if classes["test"] < 2:
        logger.warning("%s: %s; validation metrics will cover a single class (%s)", where, split_sizes, remedy)
    logger.info("no validation split: held out %d%% of train (%d rows, seed %d) as validation",
                percentage, len(parts["test"]), seed)
    return datasets.DatasetDict({"train": parts["train"], "validation": parts["test"],
                                 **{k: v for k, v in dsd.items() if k != "train"}})


def read_file(
    path: str | Path,
    text_column: str | None = None,
    text_pair_column: str | None = None,
    label_column: str | None = None,
    split: str | None = None,
    whole_file_split: str | None = None,
) -> tuple[datasets.Dataset, tuple[str, str | None, str]]:
    """One labelled file as ``text``, optional ``text_pair`` and ``label`` (raw values, not yet class ids).

    Same formats, checks, column inference and empty-text dropping as :func:`load_custom`. With ``split``,
    a file with an ``exp_split`` column (like SST's ``sst_dataset.csv``) keeps only that split's rows; a file
    without one is one split, read whole when ``split`` is ``whole_file_split`` (``"test"`` for a test file)
    and refused with any other ``split`` (its rows would be reported as a split they are not).
    Returns the dataset and the (text, text_pair, label) column names used.
    """
    ds, kinds = _load_file(path)
    columns = _resolve_columns(ds.column_names, text_column, text_pair_column, label_column, str(path))
    _check_cells(kinds, columns)
    if split is not None and "exp_split" in ds.column_names:
        values = set(ds["exp_split"])
        if split not in values:
            raise ValueError(f"{path} has no rows with exp_split == {split!r}; its exp_split values are "
                             f"{sorted(map(str, values))}")
        ds = ds.filter(lambda b: [s == split for s in b["exp_split"]], batched=True)
    elif split is not None and split != whole_file_split:
        whole = f": the whole file is the {whole_file_split!r} split" if whole_file_split else ""
        raise ValueError(f"--split {split!r} selects the rows of a file's exp_split column, and {path} has "
                         f"none{whole}; drop --split, or give a file with an exp_split column")
    ds = _standardize(ds, str(path), *columns, minus_one_is_missing=False)
    if len(ds) == 0:
        raise ValueError(f"{path} has no rows with text and a label")
    return ds, columns
