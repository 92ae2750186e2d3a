"""Offline text augmentation for Russian contact-centre requests: no server, no model, seeded.

Citizens' messages differ from one another mostly in surface form, not in what they ask: typos,
a wrong keyboard layout, abbreviations, greetings and fillers, free word order, synonyms. Each
variant combines a few of these operations, so the classifier sees the noise real logs carry
while the request itself stays the same:

- `synonyms`: the word-form dictionary and its operations, ``synonym`` and ``abbreviation``;
- `_phrasing`: ``reorder`` (a time phrase between the end and the front), ``filler`` and ``case``;
- `_noise`: ``typo``, ``char_drop``, ``char_dup`` and ``wrong_layout``;
- `generator`: `OfflineAugmenter`, which combines them into seeded, distinct variants.
"""

from esk_pipeline.pipeline.augment.offline.generator import (
    ALL_OPERATIONS,
    LEXICAL_OPERATIONS,
    METHOD_PREFIX,
    NOISE_OPERATIONS,
    OFFLINE_MODEL,
    OfflineAugmenter,
    OfflineVariant,
    Operation,
)
from esk_pipeline.pipeline.augment.offline.synonyms import (
    DEFAULT_DICTIONARY_PATH,
    WordFormDictionary,
    default_dictionary,
)

__all__ = [
    "ALL_OPERATIONS",
    "DEFAULT_DICTIONARY_PATH",
    "LEXICAL_OPERATIONS",
    "METHOD_PREFIX",
    "NOISE_OPERATIONS",
    "OFFLINE_MODEL",
    "OfflineAugmenter",
    "OfflineVariant",
    "Operation",
    "WordFormDictionary",
    "default_dictionary",
]
