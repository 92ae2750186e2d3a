"""esk_pipeline: contact-centre logs -> labelled, reviewed, versioned datasets, on Dagster.

`dagster ... -m esk_pipeline` looks for `defs` in this module. The library below
(`esk_pipeline.pipeline`) must stay importable without paying for Dagster, so the definitions
are only loaded here when Dagster itself is already imported (as it is under its CLI).
"""

import sys

if "dagster" in sys.modules:
    from esk_pipeline.definitions import defs as defs
