"""bbpe: exact GPT-2 / RoBERTa byte-level BPE with a Rust core.

>>> from bbpe import Tokenizer
>>> tok = Tokenizer.from_pretrained("roberta-base")
>>> tok.encode("It was a great day")
[0, 243, 21, 10, 372, 183, 2]
"""

from bbpe.tokenizer import Tokenizer
from bbpe.trainer import GPT2_SPECIALS, ROBERTA_SPECIALS, TrainingReport, train, train_with_report

__all__ = [
    "GPT2_SPECIALS",
    "ROBERTA_SPECIALS",
    "Tokenizer",
    "TrainingReport",
    "train",
    "train_with_report",
]
__version__ = "0.1.0"
