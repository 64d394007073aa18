"""bbpe.packing: the four input formats of RoBERTa's ablation from sentence-split
shards. Generated corpora give every token a distinct id (4, 5, 6, ... in corpus
order), so each id in a block tells which document and sentence it came from."""

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import bbpe
from bbpe import shards
from bbpe.packing import FORMATS, IS_NEXT, NOT_NEXT, ShardDocuments, SpecialIds, pack
from bbpe.sample import sample_path

SPECIALS = SpecialIds(bos=0, eos=2, pad=1, mask=3)
FIRST_ID = 4  # the first text id: the specials are below it
PAIR_FORMATS = ("segment-pair", "sentence-pair")


def write_documents(directory, documents: list[list[int]], shard_count: int = 1) -> ShardDocuments:
    """Shards `part_00`, `part_01`, ... of `documents` (lists of sentence lengths);
    the ids are FIRST_ID, FIRST_ID + 1, ... in corpus order."""
    next_id = FIRST_ID
    for k, part in enumerate(np.array_split(np.arange(len(documents)), shard_count)):
        docs = [documents[d] for d in part]
        lengths = [n for doc in docs for n in doc]
        prefix = os.path.join(directory, f"part_{k:02d}")
        np.arange(next_id, next_id + sum(lengths), dtype="<i4").tofile(prefix + ".bin")
        doc_index = np.cumsum([0] + [len(doc) for doc in docs])
        shards.write_index(prefix + ".idx", lengths, doc_index, np.int32)
        next_id += sum(lengths)
    return ShardDocuments(directory)


class Origin:
    """Where the ids of a generated corpus come from: documents and sentences as
    id ranges [start, stop)."""

    def __init__(self, documents: list[list[int]]):
        lengths = [n for doc in documents for n in doc]
        self.sentence_stops = FIRST_ID + np.cumsum(lengths, dtype=np.int64)
        self.sentence_starts = self.sentence_stops - lengths
        sizes = [sum(doc) for doc in documents]
        self.doc_stops = FIRST_ID + np.cumsum(sizes, dtype=np.int64)
        self.doc_starts = self.doc_stops - sizes
        self.total = sum(lengths)
        # Each sentence's document, and the sentences with text.
        self.sentence_docs = np.repeat(np.arange(len(documents)), [len(d) for d in documents])
        self.with_text = np.array(lengths, dtype=np.int64) > 0

    def doc(self, token: int) -> int:
        return int(np.searchsorted(self.doc_stops, token, side="right"))

    def sentence(self, token: int) -> int:
        return int(np.searchsorted(self.sentence_stops, token, side="right"))

    def sentence_span(self, token: int) -> tuple[int, int]:
        s = self.sentence(token)
        return int(self.sentence_starts[s]), int(self.sentence_stops[s])

    def doc_span(self, token: int) -> tuple[int, int]:
        d = self.doc(token)
        return int(self.doc_starts[d]), int(self.doc_stops[d])

    def sentences_after(self, token: int) -> int:
        """How many sentences with text follow token's sentence in its document."""
        s = self.sentence(token)
        later = self.sentence_docs[s + 1 :] == self.sentence_docs[s]
        return int(np.count_nonzero(later & self.with_text[s + 1 :]))

    def sentences_in_doc(self, token: int) -> int:
        """How many sentences with text token's document has."""
        return int(np.count_nonzero(self.with_text[self.sentence_docs == self.doc(token)]))

    def last_sentences(self) -> set[int]:
        """The last sentence with text of every document that has text."""
        with_text = np.flatnonzero(self.with_text)
        docs = self.sentence_docs[with_text]
        return set(with_text[np.append(docs[1:] != docs[:-1], True)].tolist())


def contiguous(ids: list[int], origin: Origin) -> bool:
    """Consecutive text of one document."""
    consecutive = ids == list(range(ids[0], ids[0] + len(ids)))
    return consecutive and origin.doc(ids[0]) == origin.doc(ids[-1])


def pieces_of(block, format: str, max_len: int) -> list[list[int]]:
    """The text of a block between its special tokens, after checking them."""
    ids = block.input_ids.tolist()
    assert block.input_ids.dtype == np.int64
    assert len(ids) <= max_len
    assert ids[0] == SPECIALS.bos and ids[-1] == SPECIALS.eos
    assert not {SPECIALS.bos, SPECIALS.pad, SPECIALS.mask} & set(ids[1:-1])
    if format in PAIR_FORMATS:
        boundary = block.segment_boundary
        assert block.nsp_label in (IS_NEXT, NOT_NEXT)
        assert ids[boundary - 2 : boundary] == [SPECIALS.eos, SPECIALS.eos]
        a, b = ids[1 : boundary - 2], ids[boundary:-1]
        assert a and b and SPECIALS.eos not in a + b
        return [a, b]
    assert block.nsp_label is None and block.segment_boundary is None
    pieces, current = [], []
    for token in ids[1:-1]:
        if token == SPECIALS.eos:
            pieces.append(current)
            current = []
        else:
            current.append(token)
    pieces.append(current)
    assert all(pieces)
    return pieces


# ---------------------------------------------------------------------------
# generated corpora

# Documents of sentence lengths: empty sentences and documents, and sentences
# longer than a block, are all among them.
sentence_lengths = st.lists(st.integers(0, 14), max_size=6)
documents = st.lists(sentence_lengths, min_size=1, max_size=8).filter(
    lambda docs: sum(map(sum, docs)) > 0
)
two_documents = st.lists(sentence_lengths, min_size=2, max_size=8).filter(
    lambda docs: sum(sum(doc) > 0 for doc in docs) >= 2
)
SETTINGS = settings(max_examples=200, deadline=None)


@SETTINGS
@given(documents, st.integers(3, 16), st.integers(1, 3), st.integers(0, 3))
def test_full_sentences(documents, max_len, shard_count, seed):
    origin = Origin(documents)
    room = max_len - 2
    with tempfile.TemporaryDirectory() as directory:
        corpus = write_documents(directory, documents, shard_count)
        blocks = pack(corpus, "full-sentences", SPECIALS, max_len=max_len, seed=seed)
        assert blocks.lengths().tolist() == [len(b.input_ids) for b in blocks]
        stream: list[list[int]] = []  # runs of one document's text, block after block
        for k, block in enumerate(blocks):
            pieces = pieces_of(block, "full-sentences", max_len)
            for left, right in zip(pieces, pieces[1:], strict=False):
                # A separator sits exactly where one document ends and the next begins.
                assert left[-1] + 1 == origin.doc_span(left[-1])[1]
                assert right[0] == origin.doc_span(right[0])[0]
            for piece in pieces:
                assert contiguous(piece, origin)
                if stream and origin.doc(stream[-1][-1]) == origin.doc(piece[0]):
                    stream[-1] += piece
                else:
                    stream.append(piece)
            # Whole sentences: one that fits a block is never cut.
            for token in (block.input_ids[1], block.input_ids[-2]):
                start, stop = origin.sentence_span(int(token))
                if stop - start <= room:
                    assert set(range(start, stop)) <= set(block.input_ids.tolist())
            # Greedy: the next block's first sentence (or piece of one) did not fit here.
            if k + 1 < len(blocks):
                first = int(blocks[k + 1].input_ids[1])
                start, stop = origin.sentence_span(first)
                unit = min(stop - first, room)
                separator = first == origin.doc_span(first)[0]
                assert len(block.input_ids) + unit + separator > max_len
        # Every token once, each document whole and in order.
        every_token = list(range(FIRST_ID, FIRST_ID + origin.total))
        assert sorted(t for run in stream for t in run) == every_token
        for run in stream:
            assert run[0] == origin.doc_span(run[0])[0] and contiguous(run, origin)
        assert len({origin.doc(run[0]) for run in stream}) == len(stream)


@SETTINGS
@given(documents, st.integers(3, 16), st.integers(1, 3), st.integers(0, 3))
def test_doc_sentences(documents, max_len, shard_count, seed):
    origin = Origin(documents)
    room = max_len - 2
    with tempfile.TemporaryDirectory() as directory:
        corpus = write_documents(directory, documents, shard_count)
        blocks = pack(corpus, "doc-sentences", SPECIALS, max_len=max_len, seed=seed)
        assert blocks.lengths().tolist() == [len(b.input_ids) for b in blocks]
        seen = []
        for k, block in enumerate(blocks):
            [text] = pieces_of(block, "doc-sentences", max_len)  # no separators inside
            assert contiguous(text, origin)  # so within one document
            first = text[0]
            start, stop = origin.sentence_span(first)
            assert first == start or stop - start > room  # cut only inside a long sentence
            # Greedy within the document: the next block's first unit did not fit here.
            if k + 1 < len(blocks):
                following = int(blocks[k + 1].input_ids[1])
                if origin.doc(following) == origin.doc(first):
                    start, stop = origin.sentence_span(following)
                    assert len(block.input_ids) + min(stop - following, room) > max_len
            seen += text
        assert sorted(seen) == list(range(FIRST_ID, FIRST_ID + origin.total))


def check_pairs(blocks, format, max_len, origin, short_seq_prob=0.0):
    """The layout and provenance of every pair block; returns the NSP labels."""
    room = max_len - 4
    assert blocks.lengths().tolist() == [len(b.input_ids) for b in blocks]
    labels = []
    used = []  # the text of As and IsNext Bs: each at most once in an epoch
    for block in blocks:
        a, b = pieces_of(block, format, max_len)
        assert contiguous(a, origin) and contiguous(b, origin)
        maybe_cut = len(a) + len(b) == room
        # Cuts are away from the junction: A ends and B starts on a sentence boundary.
        assert a[-1] + 1 == origin.sentence_span(a[-1])[1]
        assert b[0] == origin.sentence_span(b[0])[0]
        if not maybe_cut:
            assert a[0] == origin.sentence_span(a[0])[0]
            assert b[-1] + 1 == origin.sentence_span(b[-1])[1]
        if format == "sentence-pair":
            assert origin.sentence(a[0]) == origin.sentence(a[-1])
            assert origin.sentence(b[0]) == origin.sentence(b[-1])
        if block.nsp_label == IS_NEXT:
            assert b[0] == a[-1] + 1 and origin.doc(a[-1]) == origin.doc(b[0])
            used += a + b
            if format == "segment-pair" and not maybe_cut:
                # B takes the last sentence of its document rather than leave it alone.
                assert origin.sentences_after(b[-1]) != 1
                if not short_seq_prob:
                    # A chunk stops short of the target only at the end of its document.
                    assert b[-1] + 1 == origin.doc_span(b[-1])[1]
        else:
            assert origin.doc(a[0]) != origin.doc(b[0])
            used += a
        # Every label is a fair coin: no A is drawn that its document cannot continue.
        assert origin.sentences_in_doc(a[0]) >= 2
        if format == "sentence-pair":
            assert origin.sentences_after(a[-1]) >= 1
        elif origin.sentences_after(a[-1]) == 0:
            # A NotNext A took the last sentence, which would have been left alone.
            assert block.nsp_label == NOT_NEXT
        labels.append(block.nsp_label)
    assert len(used) == len(set(used))
    return labels


@SETTINGS
@given(
    two_documents,
    st.sampled_from(PAIR_FORMATS),
    st.integers(6, 20),
    st.integers(1, 3),
    st.integers(0, 3),
    st.sampled_from([0.0, 0.5]),
)
def test_pairs(documents, format, max_len, shard_count, seed, short_seq_prob):
    origin = Origin(documents)
    with tempfile.TemporaryDirectory() as directory:
        corpus = write_documents(directory, documents, shard_count)
        if max(sum(n > 0 for n in doc) for doc in documents) < 2:
            # No A could have an IsNext B.
            with pytest.raises(ValueError, match="at least two sentences"):
                pack(corpus, format, SPECIALS, max_len=max_len, seed=seed)
            return
        blocks = pack(
            corpus, format, SPECIALS, max_len=max_len, seed=seed, short_seq_prob=short_seq_prob
        )
        check_pairs(blocks, format, max_len, origin, short_seq_prob)
        if format == "sentence-pair":
            # Every sentence with text is an A or an IsNext B at most once (cut or
            # whole), and only a document's last sentence, left alone, is neither.
            sentences = [
                origin.sentence(side[0])
                for block in blocks
                for side in pieces_of(block, format, max_len)[: 1 + (block.nsp_label == IS_NEXT)]
            ]
            assert len(sentences) == len(set(sentences))
            with_text = {origin.sentence(t) for t in range(FIRST_ID, FIRST_ID + origin.total)}
            assert set(sentences) <= with_text
            assert with_text - set(sentences) <= origin.last_sentences()


@pytest.fixture(scope="module")
def many_documents(tmp_path_factory):
    """600 documents of 1-12 sentences of 1-20 tokens: (corpus, origin, directory)."""
    rng = np.random.default_rng(7)
    docs = [rng.integers(1, 21, rng.integers(1, 13)).tolist() for _ in range(600)]
    directory = tmp_path_factory.mktemp("many")
    return write_documents(directory, docs), Origin(docs), directory


@pytest.mark.parametrize(
    ("format", "short_seq_prob"),
    [("segment-pair", 0.0), ("segment-pair", 0.5), ("sentence-pair", 0.0)],
)
def test_nsp_labels_are_fair_coins(many_documents, format, short_seq_prob):
    """Every label is a fair coin, ends of documents and short documents included,
    so IsNext is half of all pairs: within 4 standard deviations of 0.5 (the
    labels' deviations from 0.5 add up to a martingale, of variance n/4)."""
    corpus, origin, _ = many_documents
    max_len = 64
    labels = []
    for seed in range(4):
        blocks = pack(
            corpus, format, SPECIALS, max_len=max_len, seed=seed, short_seq_prob=short_seq_prob
        )
        labels += check_pairs(blocks, format, max_len, origin, short_seq_prob)
    n = len(labels)
    assert n > 4000
    assert abs(labels.count(IS_NEXT) / n - 0.5) < 4 * (0.25 / n) ** 0.5


def test_short_seq_prob_shortens_segment_pairs(many_documents):
    corpus, _, _ = many_documents
    full = pack(corpus, "segment-pair", SPECIALS, max_len=128)
    short = pack(corpus, "segment-pair", SPECIALS, max_len=128, short_seq_prob=1.0)
    assert short.lengths().mean() < 0.75 * full.lengths().mean()
    assert len(short) > len(full)
    # sentence-pair has no target length to shorten.
    assert np.array_equal(
        pack(corpus, "sentence-pair", SPECIALS, short_seq_prob=1.0).lengths(),
        pack(corpus, "sentence-pair", SPECIALS).lengths(),
    )


# ---------------------------------------------------------------------------
# determinism


def digest(blocks) -> str:
    h = hashlib.sha256()
    for block in blocks:
        h.update(block.input_ids.tobytes())
        h.update(repr((block.nsp_label, block.segment_boundary)).encode())
    return h.hexdigest()


@pytest.mark.parametrize("format", FORMATS)
def test_seed_and_epoch_decide_the_blocks(many_documents, format):
    corpus, _, _ = many_documents
    blocks = pack(corpus, format, SPECIALS, max_len=48, seed=1, epoch=2)
    assert (blocks.format, blocks.max_len, blocks.seed, blocks.epoch) == (format, 48, 1, 2)
    again = pack(corpus, format, SPECIALS, max_len=48, seed=1, epoch=2)
    assert digest(again) == digest(blocks)
    assert digest(pack(corpus, format, SPECIALS, max_len=48, seed=1, epoch=3)) != digest(blocks)
    assert digest(pack(corpus, format, SPECIALS, max_len=48, seed=2, epoch=2)) != digest(blocks)


def test_the_same_blocks_in_another_process_without_torch(many_documents):
    corpus, _, directory = many_documents
    script = f"""
import hashlib, json, sys
from bbpe.packing import ShardDocuments, SpecialIds, pack, FORMATS
corpus = ShardDocuments({str(directory)!r})
out = {{}}
for format in FORMATS:
    h = hashlib.sha256()
    for block in pack(corpus, format, SpecialIds(0, 2, 1, 3), max_len=48, seed=5, epoch=1):
        h.update(block.input_ids.tobytes())
        h.update(repr((block.nsp_label, block.segment_boundary)).encode())
    out[format] = h.hexdigest()
out["torch"] = "torch" in sys.modules
print(json.dumps(out))
"""
    env = {**os.environ, "PYTHONPATH": str(Path(bbpe.__file__).parent.parent)}
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, check=True
    )
    theirs = json.loads(result.stdout)
    assert theirs.pop("torch") is False
    ours = {f: digest(pack(corpus, f, SPECIALS, max_len=48, seed=5, epoch=1)) for f in FORMATS}
    assert theirs == ours


# ---------------------------------------------------------------------------
# the sequence of blocks


def test_blocks_are_a_sequence(many_documents):
    corpus, _, _ = many_documents
    blocks = pack(corpus, "full-sentences", SPECIALS, max_len=100)
    assert len(blocks) == len(blocks.lengths()) > 10
    assert np.array_equal(blocks[-1].input_ids, blocks[len(blocks) - 1].input_ids)
    assert np.array_equal(blocks[np.int64(3)].input_ids, blocks[3].input_ids)
    with pytest.raises(IndexError, match="out of range"):
        blocks[len(blocks)]
    assert len(list(blocks)) == len(blocks)
    assert blocks.lengths().dtype == np.int64
    with pytest.raises(ValueError, match="read-only"):
        blocks.lengths()[0] = 0
    assert "full-sentences" in repr(blocks)


def test_bad_arguments(many_documents, tmp_path):
    corpus, _, _ = many_documents
    with pytest.raises(ValueError, match="unknown format 'full'"):
        pack(corpus, "full", SPECIALS)
    with pytest.raises(ValueError, match="at least 3"):
        pack(corpus, "doc-sentences", SPECIALS, max_len=2)
    with pytest.raises(ValueError, match="at least 6"):
        pack(corpus, "segment-pair", SPECIALS, max_len=5)
    with pytest.raises(ValueError, match="short_seq_prob"):
        pack(corpus, "segment-pair", SPECIALS, short_seq_prob=1.5)
    with pytest.raises(ValueError, match="seed must be in \\[0, 2\\*\\*64\\), not -1"):
        pack(corpus, "full-sentences", SPECIALS, seed=-1)
    with pytest.raises(ValueError, match="epoch must be in .*, not 18446744073709551616"):
        pack(corpus, "full-sentences", SPECIALS, epoch=2**64)
    # One document has nothing to draw NotNext pairs from (an empty one does not count).
    lonely = write_documents(tmp_path, [[3, 4], [0], []])
    with pytest.raises(ValueError, match="at least two documents"):
        pack(lonely, "sentence-pair", SPECIALS)
    assert len(pack(lonely, "full-sentences", SPECIALS)) == 1


# ---------------------------------------------------------------------------
# special ids and the corpus


def test_special_ids_from_a_tokenizer():
    roberta = bbpe.Tokenizer.from_pretrained("roberta-base")
    specials = SpecialIds.from_tokenizer(roberta)
    assert specials == SpecialIds(bos=0, eos=2, pad=1, mask=50264)
    assert specials.all() == (0, 2, 1, 50264)
    with pytest.raises(ValueError, match="the vocabulary has no .*<mask> token"):
        SpecialIds.from_tokenizer(bbpe.Tokenizer.from_pretrained("gpt2"))


@pytest.fixture(scope="module")
def sample_shards(tmp_path_factory):
    """The bundled sample, sentence-split by shards.write into several shards."""
    directory = tmp_path_factory.mktemp("sample")
    roberta = bbpe.Tokenizer.from_pretrained("roberta-base")
    shards.write(sample_path(), directory, roberta, split_sentences=True, shard_size="300KB")
    return directory, roberta


def test_shard_documents_of_written_shards(sample_shards, tmp_path):
    directory, roberta = sample_shards
    manifest = json.loads((directory / "manifest.json").read_text())
    prefixes = [str(directory / entry["prefix"]) for entry in manifest["shards"]]
    assert len(prefixes) > 1
    corpus = ShardDocuments(directory)
    assert (corpus.num_documents, corpus.num_sentences, corpus.num_tokens) == (
        manifest["documents"],
        manifest["sequences"],
        manifest["tokens"],
    )
    assert corpus.sentence_lengths.dtype == corpus.document_starts.dtype == np.int64
    assert corpus.document_starts[0] == 0 and corpus.document_starts[-1] == corpus.num_sentences
    # Documents and sentences in shard order, whatever names the shards were given by.
    datasets = [shards.IndexedDataset(p) for p in prefixes]
    expected = [s.tolist() for ds in datasets for k in range(ds.documents) for s in ds.document(k)]
    assert [corpus.sentence(i).tolist() for i in range(corpus.num_sentences)] == expected
    assert corpus.sentence(-1).tolist() == expected[-1]
    last = datasets[-1].document(-1)
    assert [corpus.sentence(i).tolist() for i in corpus.document(-1)] == [s.tolist() for s in last]
    for source in (prefixes, datasets, [prefixes[0], datasets[1:]]):
        same = ShardDocuments(source)
        assert np.array_equal(same.document_starts, corpus.document_starts)
    # Without a manifest: every *.idx, sorted.
    for path in directory.glob("data_*"):
        shutil.copy(path, tmp_path)
    assert np.array_equal(ShardDocuments(tmp_path).sentence_lengths, corpus.sentence_lengths)
    with pytest.raises(IndexError):
        corpus.document(corpus.num_documents)

    # Full sentences of real text: every token once, plus one </s> per document joint.
    specials = SpecialIds.from_tokenizer(roberta)
    blocks = pack(corpus, "full-sentences", specials, max_len=128)
    ids = np.concatenate([b.input_ids[1:-1] for b in blocks])
    assert len(ids) - np.count_nonzero(ids == specials.eos) == corpus.num_tokens
    text = roberta.decode(blocks[0].input_ids.tolist(), skip_special_tokens=True)
    assert text.strip()


def test_shard_documents_errors(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="holds no tokens"):
        write_documents(tmp_path / "empty", [[0, 0], []])
    (tmp_path / "none").mkdir()
    with pytest.raises(ValueError, match="no shards"):
        ShardDocuments(tmp_path / "none")
    with pytest.raises(ValueError, match="holds no tokens"):
        ShardDocuments([])
    with pytest.raises(TypeError, match="shard prefix"):
        ShardDocuments(42)


@pytest.mark.parametrize("entries", [[1, 2, 3], [0, 3, 2], [0, 1, 2]])
def test_a_document_index_that_does_not_match_is_named(tmp_path, entries):
    """Not starting at 0, decreasing, not ending at the number of sequences."""
    write_documents(tmp_path, [[1, 1], [1]])
    idx = tmp_path / "part_00.idx"
    # The document index is the file's last three int64s (3 sequences, 2 documents).
    idx.write_bytes(idx.read_bytes()[:-24] + np.array(entries, dtype="<i8").tobytes())
    with pytest.raises(ValueError, match="part_00.idx: the document index must start at 0"):
        ShardDocuments(tmp_path / "part_00")


# ---------------------------------------------------------------------------
# reading blocks a batch at a time


@SETTINGS
@given(
    documents,
    st.sampled_from(FORMATS),
    st.integers(6, 16),
    st.integers(1, 3),
    st.integers(0, 3),
    st.data(),
)
def test_a_batch_is_its_blocks_side_by_side(documents, format, max_len, shard_count, seed, data):
    assume_pairs = format in PAIR_FORMATS
    with tempfile.TemporaryDirectory() as directory:
        corpus = write_documents(directory, documents, shard_count)
        try:
            blocks = pack(corpus, format, SPECIALS, max_len=max_len, seed=seed)
        except ValueError:  # a pair format over too few documents or sentences
            assert assume_pairs
            return
        n = len(blocks)
        indices = data.draw(st.lists(st.integers(-n, n - 1), min_size=1, max_size=12))
        extra = data.draw(st.integers(0, 3))
        width = int(blocks.lengths()[indices].max()) + extra
        ids, lengths, labels = blocks.batch(indices, width)
        assert ids.shape == (len(indices), width) and ids.dtype == np.int64
        for row, i in enumerate(indices):
            block = blocks[i]
            size = len(block.input_ids)
            assert lengths[row] == size
            assert ids[row, :size].tolist() == block.input_ids.tolist()
            assert (ids[row, size:] == SPECIALS.pad).all()
            assert (labels is None) == (block.nsp_label is None)
            if labels is not None:
                assert labels[row] == block.nsp_label
        with pytest.raises(IndexError, match=f"block {n} out of range for {n} blocks"):
            blocks.batch([0, n])
        if extra == 0 and width > 2:
            with pytest.raises(ValueError, match="less than the longest block"):
                blocks.batch(indices, width - 1)


def full_sentences_text(blocks) -> list[int]:
    """The text of every full-sentences block, after checking that each piece
    (the text between separators) is one document's consecutive ids."""
    text = []
    for block in blocks:
        for piece in pieces_of(block, "full-sentences", blocks.max_len):
            assert piece == list(range(piece[0], piece[0] + len(piece)))
            text += piece
    return text


@SETTINGS
@given(documents, st.sampled_from(["train", "validation"]), st.integers(1, 3), st.integers(0, 3))
def test_blocks_of_a_split_hold_its_text_once(documents, split, shard_count, seed):
    with tempfile.TemporaryDirectory() as directory:
        write_documents(directory, documents, shard_count)
        try:
            corpus = ShardDocuments(directory, split=split, split_weights=(1, 1, 0), seed=seed)
        except ValueError as error:  # the split drew only documents without text
            assert "holds no tokens" in str(error)
            return
        blocks = pack(corpus, "full-sentences", SPECIALS, max_len=9, seed=seed)
        expected = [int(t) for i in range(corpus.num_sentences) for t in corpus.sentence(i)]
        assert sorted(full_sentences_text(blocks)) == sorted(expected)


def test_sequences_stored_out_of_order_are_read_where_they_lie(tmp_path):
    """Megatron's format allows any pointers: here sentences lie in the .bin
    last to first (ids count up in corpus order), so no two are end to end."""
    lengths = [3, 0, 4, 2, 5, 1]
    ids = np.arange(FIRST_ID, FIRST_ID + sum(lengths), dtype="<i4")
    starts = np.cumsum([0, *lengths[:-1]])
    stored = np.concatenate([ids[s : s + n] for s, n in zip(starts, lengths, strict=True)][::-1])
    stored.tofile(tmp_path / "part.bin")
    shards.write_index(tmp_path / "part.idx", lengths, [0, 2, 4, 6], np.int32)
    size = np.dtype("<i4").itemsize
    pointers = (sum(lengths) - np.cumsum(lengths)) * size  # the later sentences come first
    patch_pointers(tmp_path / "part.idx", pointers)
    corpus = ShardDocuments(tmp_path / "part")
    assert [corpus.sentence(i).tolist() for i in range(6)] == [
        ids[s : s + n].tolist() for s, n in zip(starts, lengths, strict=True)
    ]
    blocks = pack(corpus, "full-sentences", SPECIALS, max_len=6, seed=2)
    assert sorted(full_sentences_text(blocks)) == ids.tolist()


def patch_pointers(idx: Path, pointers) -> None:
    """Overwrite the sequence pointers of an index file."""
    from bbpe.shards.format import HEADER_SIZE

    data = bytearray(idx.read_bytes())
    n = len(pointers)
    offset = HEADER_SIZE + 4 * n  # after the header and the int32 lengths
    data[offset : offset + 8 * n] = np.asarray(pointers, dtype="<i8").tobytes()
    idx.write_bytes(bytes(data))


@pytest.mark.parametrize(
    "pointer, what", [(2, "at byte 2"), (-4, "at byte -4"), (400, "at byte 400")]
)
def test_a_sequence_outside_its_bin_is_named_when_blocks_are_read(tmp_path, pointer, what):
    write_documents(tmp_path, [[2, 3], [4]])
    patch_pointers(tmp_path / "part_00.idx", [0, pointer, 20])
    blocks = pack(ShardDocuments(tmp_path), "full-sentences", SPECIALS, max_len=8)
    with pytest.raises(shards.ShardFormatError, match=f"part_00.idx: sequence 1 .3 tokens {what}"):
        blocks.batch([0])
