"""Loaders on small files in the original formats, Hub-row conversions, errors, collator and CLI."""

import logging
import lzma
import re

import datasets
import pytest
from transformers import AutoTokenizer, DataCollatorWithPadding

from hf_attn_at.cli.main import main
from hf_attn_at.data import (
    TASKS,
    agnews,
    babi,
    imdb,
    load_task,
    newsgroups,
    nli,
    padding_efficiency,
    prepare_task,
    sst,
    tokenize_dataset,
)

AGNEWS_ROWS = [
    '"3","Wall St. Bears Claw Back","Reuters - Short-sellers are seeing green again."',
    '"1","Iraq vote set","Officials said on Monday, the 5th, that ""it"" will go ahead."',
    '"2","Sox win","Boston beat New York 10-3."',
    '"4","New chip","Intel unveiled a chip."',
]


def write_agnews(root, train_rows=None):
    folder = root / "ag_news"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "train.csv").write_text("\n".join(train_rows or AGNEWS_ROWS * 10) + "\n", encoding="utf-8")
    (folder / "test.csv").write_text("\n".join(AGNEWS_ROWS) + "\n", encoding="utf-8")


def question_file(passage, question, answer, entities):
    mapping = "\n".join(f"@entity{i}:Name {i}" for i in entities)
    return f"http://www.cnn.com/2015/x.html\n\n{passage}\n\n{question}\n\n{answer}\n\n{mapping}\n"


def write_cnn(root):
    for folder, offset in (("training", 0), ("validation", 10), ("test", 20)):
        path = root / "cnn" / "questions" / folder
        path.mkdir(parents=True)
        for k in range(3):
            text = question_file(f"@entity0 met @entity{k + 1} in @entity4 .", "@placeholder met @entity0",
                                 f"@entity{k + 1}", [0, k + 1, 4, 5])
            (path / f"{offset + k:04d}.question").write_text(text, encoding="utf-8")


def test_agnews_local(tmp_path):
    write_agnews(tmp_path)
    dsd = load_task("agnews", "local", tmp_path)
    assert {s: len(d) for s, d in dsd.items()} == {"train": 17, "validation": 3, "test": 2}
    assert dsd["test"].features["label"].names == ["World", "Business"]
    assert dsd["test"][0] == {"text": "Wall St. Bears Claw Back Reuters - Short-sellers are seeing green again.",
                              "label": 1}
    assert dsd["test"][1]["text"].endswith('the 5th, that "it" will go ahead.')


def test_cnn_local(tmp_path):
    write_cnn(tmp_path)
    dsd = load_task("cnn", "local", tmp_path)
    assert dsd["train"].features["label"].names == [f"@entity{i}" for i in range(6)]
    row = dsd["train"][1]
    assert row["label"] == 2 and row["text_pair"] == "@placeholder met @entity0"
    assert row["candidate_mask"] == [True, False, True, False, True, False]


def test_cnn_entity_markers_are_distinct_words(tmp_path):
    """`@entityN` keeps its number (the digit rule would make every entity `@ qqq`, so questions with different
    answers had the same ids) and `@placeholder` is one word, as in Jain & Wallace's CNN vocabulary."""
    write_cnn(tmp_path)
    tokenized, tokenizer = prepare_task("cnn", "local", tmp_path, min_df=1)
    texts = [tokenizer.convert_ids_to_tokens(ids) for ids in tokenized["train"]["input_ids"]]
    assert texts[0][:6] == ["@entity0", "met", "@entity1", "in", "@entity4", "."]
    assert "@placeholder" in texts[0] and "qqq" not in texts[0]
    assert len({tuple(ids) for ids in tokenized["train"]["input_ids"]}) == 3  # the three answers: three inputs


def test_cnn_collator_passes_candidate_mask(tmp_path):
    write_cnn(tmp_path)
    tokenized, tokenizer = prepare_task("cnn", "local", tmp_path, min_df=1)
    assert set(tokenized["train"].column_names) == {
        "input_ids", "token_type_ids", "attention_mask", "length", "label", "candidate_mask"}
    batch = DataCollatorWithPadding(tokenizer)([tokenized["train"][i] for i in range(3)])
    assert batch["candidate_mask"].shape == (3, 6) and batch["candidate_mask"].dtype.is_floating_point is False
    assert batch["labels"].tolist() == [1, 2, 3]
    assert batch["input_ids"].shape == batch["token_type_ids"].shape == batch["attention_mask"].shape
    sep = tokenizer.sep_token_id
    ids, types = tokenized["train"][0]["input_ids"], tokenized["train"][0]["token_type_ids"]
    assert types == [0] * ids.index(sep) + [1] * (len(ids) - ids.index(sep))


def test_tokenize_dataset_logs_unknown_rate(caplog):
    dsd = datasets.DatasetDict({"train": datasets.Dataset.from_dict({"text": ["a b", "a c"], "label": [0, 1]}),
                                "test": datasets.Dataset.from_dict({"text": ["a z z"], "label": [1]})})
    from hf_attn_at.tokenization import build_word_tokenizer

    tokenizer = build_word_tokenizer(dsd["train"]["text"], min_df=1)
    with caplog.at_level(logging.INFO):
        out = tokenize_dataset(dsd, tokenizer)
    assert "test: 2 of 3 tokens unknown (66.67%)" in caplog.text
    assert out["test"][0]["input_ids"] == [3, 1, 1] and out["test"][0]["length"] == 3


def test_bad_name_source_and_options():
    with pytest.raises(ValueError, match=r"unknown dataset 'sst5'; valid names: sst, imdb, 20news, agnews, snli, "
                                         r"mnli, cnn, babi1, babi2, babi3"):
        load_task("sst5")
    with pytest.raises(ValueError, match=r"source must be one of \('hub', 'local'\), got 'disk'"):
        load_task("sst", source="disk")
    with pytest.raises(ValueError, match=r"sst: unknown options \['babi_size'\]"):
        load_task("sst", "local", "x", babi_size="1k")
    with pytest.raises(ValueError, match=r"babi_size must be one of \['10k', '1k'\], got '5k'"):
        load_task("babi1", "local", "x", babi_size="5k")
    with pytest.raises(ValueError, match="needs data_dir"):
        load_task("sst", "local")
    assert len(TASKS) == 10


def test_missing_file(tmp_path):
    (tmp_path / "sst").mkdir()
    with pytest.raises(FileNotFoundError, match=re.escape(str(tmp_path / "sst" / "train.txt")) + " not found: "
                       "expected SST PTB trees"):
        load_task("sst", "local", tmp_path)
    with pytest.raises(FileNotFoundError, match=r"qa2_\*_train.txt not found: expected the bAbI 1k task 2"):
        load_task("babi2", "local", tmp_path, babi_size="1k")


@pytest.mark.parametrize(
    "name, relpath, content, message",
    [
        ("sst", "sst/train.txt", "(3 (2 fine) (3 film))\n(x broken\n", r"train.txt:2: not a PTB tree"),
        ("snli", "snli/dev.tsv", "premise\thypothesis\tlabel\na\tb\t0\na\tb\tmaybe\n",
         r"dev.tsv:3: label must be 0-2"),
        ("snli", "snli/dev.tsv", "premise\thypothesis\tlabel\na\tb\n", r"dev.tsv:2: expected 3 tab-separated"),
        ("mnli", "mnli/dev_matched.jsonl", '{"premise": "a", "hypothesis": "b", "label": "neutral"}\n{oops\n',
         r"dev_matched.jsonl:2: expected a JSON object"),
        ("agnews", "ag_news/train.csv", '"1","t","d"\n"7","t","d"\n', r"train.csv:2: expected 3 fields"),
        ("babi1", "babi/en/qa1_x_train.txt", "1 Mary went home.\n2 Where is Mary?\thome\n",
         r"qa1_x_train.txt:2: a question line needs"),
        ("babi1", "babi/en/qa1_x_train.txt", "1 Mary went home.\nMary\n", r"qa1_x_train.txt:2: expected 'N sentence'"),
    ],
)
def test_malformed_line(tmp_path, name, relpath, content, message):
    for other in ("sst/dev.txt", "sst/test.txt", "snli/test.tsv", "ag_news/test.csv", "babi/en/qa1_x_test.txt"):
        (tmp_path / other).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / other).write_text("", encoding="utf-8")
    (tmp_path / relpath).parent.mkdir(parents=True, exist_ok=True)
    (tmp_path / relpath).write_text(content, encoding="utf-8")
    with pytest.raises(ValueError, match=message):
        load_task(name, "local", tmp_path, **({"babi_size": "1k"} if name.startswith("babi") else {}))


def test_cnn_malformed(tmp_path):
    write_cnn(tmp_path)
    bad = tmp_path / "cnn" / "questions" / "test" / "0020.question"
    bad.write_text(question_file("@entity0 won", "@placeholder won", "Obama", [0]), encoding="utf-8")
    with pytest.raises(ValueError, match=r"0020.question:7: the answer must be an entity"):
        load_task("cnn", "local", tmp_path)


def test_empty_split(tmp_path):
    write_agnews(tmp_path)
    (tmp_path / "ag_news" / "test.csv").write_text('"2","Sox win","Boston beat New York."\n', encoding="utf-8")
    with pytest.raises(ValueError, match=r"agnews: split 'test' is empty after loading and filtering"):
        load_task("agnews", "local", tmp_path)


def test_imdb_local_fixture(tmp_path):
    (tmp_path / "imdb").mkdir()
    for split in ("train", "test"):
        with lzma.open(tmp_path / "imdb" / f"{split}.jsonl.xz", "wt", encoding="utf-8") as f:
            for i in range(20):
                f.write(f'{{"id": "{i}", "rating": 9, "label": {i % 2}, "text": "a fine film<br />with {i} '
                        f'stars and more words"}}\n')
            f.write('{"id": "x", "rating": 1, "label": 0, "text": "too short"}\n')
    dsd = load_task("imdb", "local", tmp_path)
    assert {s: len(d) for s, d in dsd.items()} == {"train": 16, "validation": 4, "test": 4}
    assert "<br />" not in dsd["train"][0]["text"]


@pytest.mark.parametrize("name", ["sst", "imdb", "20news", "agnews", "snli", "mnli", "babi1"])
def test_hub_offline_error(name):
    with pytest.raises(ConnectionError, match=r"cannot load .* from the Hugging Face Hub.*source='local'"):
        load_task(name)


def test_cnn_hub_is_not_available():
    with pytest.raises(ValueError, match="no canonical copy on the Hugging Face Hub.*source='local'"):
        load_task("cnn")


HUB_CONVERSIONS = [
    (sst.convert_hub_row, {"text": "a gripping film", "label": 1, "label_text": "positive"},
     {"text": "a gripping film", "label": 1}),
    (imdb.convert_hub_row, {"text": "Great.<br />Loved it", "label": 0}, {"text": "Great. Loved it", "label": 0}),
    (newsgroups.convert_hub_row, {"text": "go jays", "label": 9, "label_text": "rec.sport.baseball"},
     {"text": "go jays", "label": 0}),
    (newsgroups.convert_hub_row, {"text": "go habs", "label": 10, "label_text": "rec.sport.hockey"},
     {"text": "go habs", "label": 1}),
    (newsgroups.convert_hub_row, {"text": "gpu", "label": 1, "label_text": "comp.graphics"}, None),
    (agnews.convert_hub_row, {"text": "Stocks fall", "label": 2}, {"text": "Stocks fall", "label": 1}),
    (agnews.convert_hub_row, {"text": "Iraq vote", "label": 0}, {"text": "Iraq vote", "label": 0}),
    (agnews.convert_hub_row, {"text": "Sox win", "label": 1}, None),
    (nli.convert_hub_row, {"premise": "p", "hypothesis": "h", "label": 2}, {"text": "p", "text_pair": "h", "label": 2}),
    (nli.convert_hub_row, {"premise": "p", "hypothesis": "h", "label": -1}, None),
]


@pytest.mark.parametrize("convert, row, expected", HUB_CONVERSIONS)
def test_hub_row_conversions(convert, row, expected):
    ds = datasets.Dataset.from_list([row])  # shaped like the Hub dataset's rows
    assert convert(ds[0]) == expected


def test_hub_babi_story_conversion():
    story = {"id": ["1", "2", "3", "4", "5"], "type": [0, 0, 1, 0, 1],
             "text": ["Mary moved to the bathroom.", "John  went to the hallway.", "Where is Mary?",
                      "Mary went to the garden.", "Where is Mary?"],
             "supporting_ids": [[], [], ["1"], [], ["4"]], "answer": ["", "", "bathroom", "", "garden"]}
    ds = datasets.Dataset.from_list([{"story": story}])
    rows = babi.convert_hub_story(ds[0])
    assert rows == [
        {"text": "Mary moved to the bathroom . John went to the hallway .", "text_pair": "Where is Mary?",
         "answer": "bathroom"},
        {"text": "Mary moved to the bathroom . John went to the hallway . Mary went to the garden .",
         "text_pair": "Where is Mary?", "answer": "garden"},
    ]


def test_babi_local_matches_hub_conversion(tmp_path):
    path = tmp_path / "qa1.txt"
    path.write_text("1 Mary moved to the bathroom.\n2 John  went to the hallway.\n3 Where is Mary? \tbathroom\t1\n"
                    "4 Mary went to the garden.\n5 Where is Mary? \tgarden\t4\n1 Sandra went home.\n", encoding="utf-8")
    assert [r["text"] for r in babi.read_babi(path)] == [
        "Mary moved to the bathroom . John went to the hallway .",
        "Mary moved to the bathroom . John went to the hallway . Mary went to the garden ."]


def test_sst_tree_parsing():
    label, text = sst.parse_tree_line(r"(1 (2 -LRB-) (1 (2 A\/B) (1 bad)) (2 -RRB-))", "f", 1)
    assert (label, text) == (1, "( A/B bad )")


def test_padding_efficiency():
    lengths = [1, 100] * 64
    grouped = padding_efficiency(lengths, 2, grouped=True, seed=0)
    assert grouped > 0.9 > padding_efficiency(lengths, 2, grouped=False, seed=0)
    assert padding_efficiency([5] * 10, 4, grouped=False) == 1.0
    with pytest.raises(ValueError, match="batch_size must be >= 1, got 0"):
        padding_efficiency(lengths, 0, grouped=True)


def test_cli_prepare(tmp_path, capsys):
    write_agnews(tmp_path)
    out = tmp_path / "out"
    assert main(["prepare", "--task_name", "agnews", "--data_source", "local", "--data_dir", str(tmp_path), "--output_dir", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "train: 17 examples; labels World" in printed and "test: 2 examples; labels World 1, Business 1" in printed
    assert set(datasets.load_from_disk(str(out))) == {"train", "validation", "test"}
    assert AutoTokenizer.from_pretrained(str(out))("wall st")["input_ids"]
