"""Directories shared with Hugging Face: what bbpe saves, ``transformers.AutoTokenizer``
loads with no extra arguments (same ids, masks and special tokens); what
``transformers`` and ``tokenizers`` save, bbpe loads (same ids)."""

import json
import pickle
import shutil

import numpy as np
import pytest

import bbpe
from bbpe import Tokenizer, sample
from bbpe.tiktoken_encodings import CL100K_PATTERN
from conftest import vocab_files

transformers = pytest.importorskip("transformers")
tokenizers = pytest.importorskip("tokenizers")
from tokenizers import decoders, models, pre_tokenizers, trainers  # noqa: E402

MAX_LENGTH = 512


@pytest.fixture(scope="module")
def documents():
    """Real documents, several of them longer than 512 tokens."""
    texts = sample.sample_texts()
    return sorted(texts[:60], key=len)[-24:]


@pytest.fixture(scope="module")
def trained():
    return bbpe.train(texts=sample.sample_texts()[:200], vocab_size=1000)


@pytest.fixture(
    scope="module",
    params=["roberta-base", "gpt2", "trained", "trained-gpt2-specials", "trained-cl100k-pattern"],
)
def vocabulary(request, trained):
    """Vocabularies for each tokenizer class bbpe writes: RoBERTa's, GPT-2's, and
    the generic one (another split pattern, which those classes would replace)."""
    texts = sample.sample_texts()[:200]
    if request.param == "trained":
        return trained
    if request.param == "trained-gpt2-specials":
        return bbpe.train(texts=texts, vocab_size=1000, special_tokens=bbpe.GPT2_SPECIALS)
    if request.param == "trained-cl100k-pattern":
        return bbpe.train(texts=texts, vocab_size=1000, pattern=CL100K_PATTERN)
    return Tokenizer.from_pretrained(request.param)


def auto_tokenizer(directory):
    return transformers.AutoTokenizer.from_pretrained(str(directory), local_files_only=True)


def test_save_pretrained_writes_the_hf_file_set(tmp_path, vocabulary):
    paths = vocabulary.save_pretrained(tmp_path)
    names = {p.name for p in paths}
    assert names == {
        "tokenizer.json",
        "tokenizer_config.json",
        "special_tokens_map.json",
        "vocab.json",
        "merges.txt",
    }
    assert all(p.parent == tmp_path and p.is_file() for p in paths)
    assert {p.name for p in vocabulary.save(tmp_path / "hf", format="hf")} == names
    assert not list(tmp_path.glob("*.partial"))


@pytest.mark.parametrize("how", ["save_pretrained", "save_hf"])
def test_auto_tokenizer_gives_bbpes_ids_and_masks(tmp_path, vocabulary, documents, how):
    if how == "save_pretrained":
        vocabulary.save_pretrained(tmp_path)
    else:
        vocabulary.save(tmp_path, format="hf")
    hf = auto_tokenizer(tmp_path)
    template_ids = {vocabulary.bos_token_id, vocabulary.eos_token_id, vocabulary.pad_token_id}
    template_ids.discard(None)
    can_pad = vocabulary.pad_token_id is not None
    firsts, seconds = documents[:12], documents[12:]
    for pairs in (None, seconds):
        ours = vocabulary.encode_batch(
            firsts, pairs, max_length=MAX_LENGTH, truncation=True, padding=can_pad
        )
        unpadded = vocabulary.encode_batch(firsts, pairs, max_length=MAX_LENGTH, truncation=True)
        theirs = hf(
            firsts,
            pairs,
            max_length=MAX_LENGTH,
            truncation=True,
            padding=can_pad,
            return_special_tokens_mask=True,
        )
        assert theirs["input_ids"] == ours
        assert max(len(row) for row in ours) == MAX_LENGTH  # truncation happened
        assert theirs["attention_mask"] == [
            [int(i < len(short)) for i in range(len(row))]
            for row, short in zip(ours, unpadded, strict=True)
        ]
        # The documents hold no special token strings: every special id was added
        # by the template or padding.
        assert theirs["special_tokens_mask"] == [
            [int(i in template_ids) for i in row] for row in ours
        ]


def test_auto_tokenizer_has_robertas_special_tokens(tmp_path, trained):
    for vocabulary in (Tokenizer.from_pretrained("roberta-base"), trained):
        vocabulary.save_pretrained(tmp_path)
        hf = auto_tokenizer(tmp_path)
        assert (hf.bos_token, hf.eos_token, hf.cls_token, hf.sep_token) == ("<s>", "</s>") * 2
        assert (hf.pad_token, hf.mask_token, hf.unk_token) == ("<pad>", "<mask>", "<unk>")
        assert hf.mask_token_id == vocabulary.mask_token_id
        assert hf.pad_token_id == vocabulary.pad_token_id
        assert hf.eos_token_id == vocabulary.eos_token_id
        assert hf.model_max_length == 512
        assert hf.padding_side == "right"


def test_auto_tokenizer_of_gpt2_has_its_end_of_text(tmp_path):
    gpt2 = Tokenizer.from_pretrained("gpt2")
    gpt2.save_pretrained(tmp_path)
    hf = auto_tokenizer(tmp_path)
    # megatron-core's HuggingFace tokenizer reads eos_token_id as the end of a document
    assert hf.eos_token_id == gpt2.eos_token_id == 50256
    assert hf.bos_token == hf.unk_token == "<|endoftext|>"
    assert hf.model_max_length == 1024


def test_mask_token_collator_works_on_auto_tokenizer_output(tmp_path, documents):
    roberta = Tokenizer.from_pretrained("roberta-base")
    roberta.save_pretrained(tmp_path)
    hf = auto_tokenizer(tmp_path)
    encoded = hf(documents[:4], truncation=True, max_length=64)
    features = [{"input_ids": ids} for ids in encoded["input_ids"]]
    collator = transformers.DataCollatorForLanguageModeling(hf, return_tensors="np", seed=0)
    batch = collator(features)
    assert batch["input_ids"].shape == batch["labels"].shape == (4, 64)
    masked = batch["labels"] != -100
    assert masked.any()
    # every masked-out position holds its original id in the labels
    original = np.array(encoded["input_ids"])
    assert (batch["labels"][masked] == original[masked]).all()


# ----------------------------------------------------- loading what HF wrote


def bundled_copy(name, tmp_path):
    """A directory with a bundled vocab.json + merges.txt, as transformers reads one."""
    source = tmp_path / f"source-{name}"
    source.mkdir()
    for path in vocab_files(name):
        shutil.copy(path, source)
    return source


@pytest.mark.parametrize(
    ("name", "cls"), [("roberta-base", "RobertaTokenizerFast"), ("gpt2", "GPT2TokenizerFast")]
)
def test_loads_what_transformers_save_pretrained_wrote(tmp_path, documents, name, cls):
    hf = getattr(transformers, cls).from_pretrained(
        str(bundled_copy(name, tmp_path)), local_files_only=True
    )
    saved = tmp_path / "saved"
    hf.save_pretrained(str(saved))
    ours = Tokenizer.from_pretrained(saved)
    texts = [*documents, "Hello <mask> world</s>", " <s>a<pad>b<|endoftext|>"]
    assert ours.encode_batch(texts) == hf(texts)["input_ids"]
    assert ours.encode(texts[0], texts[1]) == hf(texts[0], texts[1])["input_ids"]


def hf_trained_byte_level(texts, specials):
    """A byte-level BPE vocabulary trained by tokenizers' own BpeTrainer."""
    tok = tokenizers.Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=800,
        special_tokens=specials,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer)
    return tok


def roberta_post_processor(kind, hf):
    """RoBERTa's template as tokenizers' own RobertaProcessing or TemplateProcessing."""
    from tokenizers import processors

    cls, sep = ("<s>", hf.token_to_id("<s>")), ("</s>", hf.token_to_id("</s>"))
    if kind == "RobertaProcessing":
        return processors.RobertaProcessing(sep, cls)
    return processors.TemplateProcessing(
        single="<s> $A </s>", pair="<s> $A </s> </s> $B </s>", special_tokens=[cls, sep]
    )


@pytest.mark.parametrize(
    ("specials", "template"),
    [
        ([], None),
        (["<|endoftext|>"], None),
        (["<s>", "<pad>", "</s>", "<unk>"], None),
        (["<s>", "<pad>", "</s>", "<unk>"], "RobertaProcessing"),
        (["<s>", "<pad>", "</s>", "<unk>"], "TemplateProcessing"),
    ],
)
def test_loads_a_tokenizer_json_trained_by_bpe_trainer(tmp_path, documents, specials, template):
    hf = hf_trained_byte_level(sample.sample_texts()[:100], specials)
    if template:
        hf.post_processor = roberta_post_processor(template, hf)
    hf.save(str(tmp_path / "tokenizer.json"))
    ours = Tokenizer.from_pretrained(tmp_path)
    texts = [*documents, "plain <s> text </s>"]
    assert ours.encode_batch(texts) == [e.ids for e in hf.encode_batch(texts)]
    # the file's post-processor decides the template, also once saved again
    again = pickle.loads(pickle.dumps(ours))
    assert again.encode(texts[0], texts[1]) == hf.encode(texts[0], texts[1]).ids


def test_loads_what_byte_level_bpe_tokenizer_saved(tmp_path, documents):
    from tokenizers.implementations import ByteLevelBPETokenizer

    hf = ByteLevelBPETokenizer()
    hf.train_from_iterator(
        sample.sample_texts()[:100], vocab_size=800, special_tokens=["<|endoftext|>"]
    )
    hf.save(str(tmp_path / "tokenizer.json"))
    ours = Tokenizer.from_pretrained(tmp_path)
    assert ours.encode_batch(documents) == [e.ids for e in hf.encode_batch(documents)]


def test_unsupported_tokenizer_json_names_the_file_and_field(tmp_path):
    from tokenizers.implementations import ByteLevelBPETokenizer

    hf = ByteLevelBPETokenizer(lowercase=True)
    hf.train_from_iterator(sample.sample_texts()[:20], vocab_size=300)
    path = tmp_path / "tokenizer.json"
    hf.save(str(path))
    with pytest.raises(ValueError, match=r"tokenizer\.json.*normalizer"):
        Tokenizer.from_pretrained(tmp_path)
    document = json.loads(path.read_text())
    document["normalizer"] = None
    document["post_processor"] = {"type": "BertProcessing", "sep": ["a", 1], "cls": ["b", 2]}
    path.write_text(json.dumps(document))
    with pytest.raises(ValueError, match=r"tokenizer\.json.*post_processor"):
        Tokenizer.from_pretrained(tmp_path)
    document["post_processor"] = None
    word_only = tokenizers.AddedToken("<x>", single_word=True, special=True)
    fresh_id = len(document["model"]["vocab"])
    document["added_tokens"] = [{"id": fresh_id, **word_only.__getstate__()}]
    path.write_text(json.dumps(document))
    with pytest.raises(ValueError, match=r"tokenizer\.json.*added_tokens\[0\]\.single_word"):
        Tokenizer.from_pretrained(tmp_path)
