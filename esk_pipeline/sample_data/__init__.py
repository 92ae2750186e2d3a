"""The seeded generator of realistic ESK contact-centre logs (what `esk_logs` in ClickHouse holds).

    from esk_pipeline.sample_data import generate_logs
    logs = generate_logs(Taxonomy.load(DEFAULT_TAXONOMY_PATH), n_rows=6000, seed=42)

Why it exists: the local text classifier is trained and benchmarked on these rows, and every
stage (ETL, labelling, review, balancing) is exercised on them, so they must look like real
citizen messages: varied Russian phrasings built from per-domain template banks with slots
(addresses, sums, months, bus and clinic numbers, meter types...), shared vocabulary between
related domains ("вода", "квитанция", "счётчик" appear in housing, meters and payments alike),
an imbalanced domain mix, a daytime rhythm, and the mess real logs have (typos, wrong keyboard
layout, CAPS, stray whitespace, emoji, phone numbers and other personal data, duplicates, empty,
one-character and very long messages, spam), each at the rate written in `MESS_RATES`.

It is deliberately not trivially separable: some wordings honestly belong to two domains and
are generated for both, some messages add a second request from a related domain, and chat
follow-ups ("ну что там?") carry their session's domain with no cue in the text. A TF-IDF +
linear SVM trained on one seed scores about 0.90 on another, which is where classifiers on real
contact-centre logs land.

`generate_logs` returns one row per message with columns `text`, `ts` (datetime64[ns, UTC]),
`user_id`, `channel`, `region`, `session_id` and `true_domain`. `true_domain` is the taxonomy
id the text was generated for: ground truth for benchmarks and tests ONLY. Real logs do not
have it, so it is dropped before the frame is inserted into ClickHouse. `generate_log_batches`
gives a large sample as frames of at most `SEED_BATCH_ROWS` rows, for inserting in batches.

Where things live: `generator` (public), the template data in `sample_templates.yaml` (read by
`_data`), and the private parts `_slots` (slot fillers and planted-PII notes), `_templates`
(templates, languages, banks), `_noise` (typos and other damage), `_banks` (per-domain banks and
weights), `_compose` (one message's text), `_draws` (users, sessions, times, row kinds).
"""

from esk_pipeline.sample_data._banks import SAMPLE_DOMAIN_WEIGHTS, domain_weights
from esk_pipeline.sample_data._draws import CHANNELS, MESS_RATES, REGIONS
from esk_pipeline.sample_data._slots import PII_KINDS
from esk_pipeline.sample_data.generator import SEED_BATCH_ROWS, generate_log_batches, generate_logs

__all__ = [
    "CHANNELS",
    "MESS_RATES",
    "PII_KINDS",
    "REGIONS",
    "SAMPLE_DOMAIN_WEIGHTS",
    "SEED_BATCH_ROWS",
    "domain_weights",
    "generate_log_batches",
    "generate_logs",
]
