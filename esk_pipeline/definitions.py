"""The Dagster code location: wires assets, checks, resources, sensors and jobs; nothing else."""

from dagster import Definitions, load_assets_from_modules

from esk_pipeline.assets import ingest
from esk_pipeline.resources.clickhouse import ClickHouseResource
from esk_pipeline.resources.io_manager import AssetFilesIOManager
from esk_pipeline.sensors import daily_labels_job, new_log_days_sensor
from esk_pipeline.settings import get_settings

defs = Definitions(
    assets=load_assets_from_modules([ingest]),
    jobs=[daily_labels_job],
    sensors=[new_log_days_sensor],
    resources={
        "io_manager": AssetFilesIOManager(base_dir=str(get_settings().app.data_dir / "assets")),
        "clickhouse": ClickHouseResource(),
    },
)
