"""Writes a tiny offline Hugging Face tokenizer directory for the peer tools.

It splits on whitespace and maps every word to one token (unknown words to [UNK]), so
it counts exactly like `rune sim-llm` (a token is a whitespace-separated word) and no
tool downloads anything from the Hub. Usage: python make_tokenizer.py OUT_DIR
"""

import json
import sys
from pathlib import Path

from tokenizers import Tokenizer, decoders, models, pre_tokenizers

out = Path(sys.argv[1])
out.mkdir(parents=True, exist_ok=True)
# GuideLLM builds synthetic prompts from Faker's lorem text and decodes them with
# skip_special_tokens, so every Faker word (with its capitalised and punctuated forms) must
# be in the vocabulary, or it would vanish from the prompt.
try:
    from faker.providers.lorem.en_US import Provider as Lorem

    base = list(Lorem.word_list)
except ImportError:  # no Faker: a small fallback list
    base = "the a an and or of to in on for with is are was it this that what which who how".split()
vocab = {"[UNK]": 0, "<s>": 1, "</s>": 2}
for w in base:
    for form in (w, w.capitalize()):
        for suffix in ("", ".", ",", "?", "!"):
            vocab.setdefault(form + suffix, len(vocab))
tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="[UNK]"))
tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
tok.decoder = decoders.WordPiece(prefix="##")  # joins tokens with single spaces
tok.save(str(out / "tokenizer.json"))
(out / "tokenizer_config.json").write_text(
    json.dumps(
        {
            "tokenizer_class": "PreTrainedTokenizerFast",
            "unk_token": "[UNK]",
            "bos_token": "<s>",
            "eos_token": "</s>",
            "model_max_length": 1000000,
        }
    )
)
(out / "special_tokens_map.json").write_text(json.dumps({"unk_token": "[UNK]", "bos_token": "<s>", "eos_token": "</s>"}))
print(f"wrote {out}/tokenizer.json ({len(vocab)} words)")
