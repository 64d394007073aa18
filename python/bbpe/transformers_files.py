"""What ``transformers.AutoTokenizer`` reads beside tokenizer.json: the
tokenizer class, which special token plays which role, the longest input
(``tokenizer_config.json``) and the roles alone (``special_tokens_map.json``).
Without them transformers knows no pad, mask or end-of-text token and takes
inputs of any length."""

from __future__ import annotations

import json
from pathlib import Path

from bbpe._publish import write_durably
from bbpe.tiktoken_encodings import ENDOFTEXT

ROBERTA_ROLES = {
    "bos_token": "<s>",
    "eos_token": "</s>",
    "unk_token": "<unk>",
    "sep_token": "</s>",
    "pad_token": "<pad>",
    "cls_token": "<s>",
    "mask_token": "<mask>",
}
GPT2_ROLES = {"bos_token": ENDOFTEXT, "eos_token": ENDOFTEXT, "unk_token": ENDOFTEXT}
# transformers' model_max_length for roberta-base and gpt2 (their position
# embeddings: PRETRAINED_POSITIONAL_EMBEDDINGS_SIZES in transformers 4).
ROBERTA_MAX_LENGTH = 512
GPT2_MAX_LENGTH = 1024


def special_token_roles(special_tokens: dict[str, int]) -> dict[str, str]:
    """Role (``"pad_token"``) -> token, for the roles this vocabulary's special
    tokens fill: RoBERTa's by name, else GPT-2's end of text in its three roles."""
    roles = {role: token for role, token in ROBERTA_ROLES.items() if token in special_tokens}
    for role, token in GPT2_ROLES.items():
        if token in special_tokens:
            roles.setdefault(role, token)
    return roles


def tokenizer_config(special_tokens: dict[str, int], tokenizer_json: dict) -> dict:
    """tokenizer_config.json for the vocabulary saved as `tokenizer_json`.
    The class is RoBERTa's or GPT-2's only where the file is what those classes
    build (GPT-2's ByteLevel pre-tokenizer, their specials and template), since
    transformers rebuilds these parts for them (and a RoBERTa tokenizer adds a
    ``<mask>`` the vocabulary lacks). Any other gets the generic class, which
    takes tokenizer.json as it is."""
    roles = special_token_roles(special_tokens)
    pre_tokenizer = tokenizer_json["pre_tokenizer"]
    gpt2_pattern = pre_tokenizer["type"] == "ByteLevel"
    byte_level = pre_tokenizer if gpt2_pattern else pre_tokenizer["pretokenizers"][-1]
    roberta_template = tokenizer_json["post_processor"]["type"] == "RobertaProcessing"
    config = {
        "tokenizer_class": "PreTrainedTokenizerFast",
        **roles,
        "add_prefix_space": byte_level["add_prefix_space"],
        "padding_side": "right",
        "truncation_side": "right",
        "clean_up_tokenization_spaces": False,  # bbpe's decode gives the text back as it was
    }
    if set(ROBERTA_ROLES.values()) <= special_tokens.keys():
        config["model_max_length"] = ROBERTA_MAX_LENGTH
        if roberta_template and gpt2_pattern:
            config.update(tokenizer_class="RobertaTokenizer", trim_offsets=True, errors="replace")
    elif ENDOFTEXT in special_tokens:
        config["model_max_length"] = GPT2_MAX_LENGTH
        if special_tokens.keys() == {ENDOFTEXT} and not roberta_template and gpt2_pattern:
            config.update(tokenizer_class="GPT2Tokenizer", errors="replace")
    return config


def write(directory: Path, config: dict) -> list[Path]:
    """Writes tokenizer_config.json and special_tokens_map.json durably."""
    roles = {role: config[role] for role in ROBERTA_ROLES if config.get(role) is not None}
    paths = [directory / "tokenizer_config.json", directory / "special_tokens_map.json"]
    for path, content in zip(paths, (config, roles), strict=True):
        write_durably(path, json.dumps(content, ensure_ascii=False, indent=2) + "\n")
    return paths
