import subprocess
import sys

import esk_pipeline.pipeline as pipeline


def test_every_contract_name_is_exported():
    for name in pipeline.__all__:
        assert getattr(pipeline, name) is not None
    assert pipeline.ETLProcessor.__module__ == "esk_pipeline.pipeline.etl.processor"


def test_the_library_never_imports_dagster():
    code = (
        "import sys, esk_pipeline.pipeline as p\n"
        "[getattr(p, n) for n in p.__all__]\n"
        "import esk_pipeline.sample_data\n"
        "assert 'dagster' not in sys.modules, 'the library imported dagster'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
