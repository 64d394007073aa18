"""The data files the package ships carry their terms: every bundled vocabulary
directory has its licence beside it, and the sample corpus its sources."""

import pytest

from bbpe.sample import sample_path
from conftest import VOCABULARIES

BUNDLED = sorted(d for d in VOCABULARIES.iterdir() if d.is_dir())


def test_the_vocabularies_are_found():
    assert {d.name for d in BUNDLED} >= {"gpt2", "roberta-base"}


@pytest.mark.parametrize("vocabulary", BUNDLED, ids=lambda d: d.name)
def test_each_bundled_vocabulary_carries_its_licence(vocabulary):
    licence = vocabulary / "LICENSE"
    assert licence.is_file(), f"{vocabulary} has no LICENSE"
    assert "Permission is hereby granted" in licence.read_text(encoding="utf-8")


def test_the_sample_corpus_names_its_sources_and_licences():
    readme = sample_path().parent / "README.md"
    text = readme.read_text(encoding="utf-8")
    assert "license" in text.lower() and "public domain" in text.lower(), readme
