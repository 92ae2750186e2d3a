"""Daily partitions by log date (UTC): how logs arrive and how backfills parallelise."""

from dagster import DailyPartitionsDefinition

from esk_pipeline.settings import get_settings

# end_offset=1 includes today: today's logs are labelled as they arrive, and the partition
# sensor re-requests a day whenever its row count grows.
daily_partitions = DailyPartitionsDefinition(
    start_date=get_settings().app.partitions_start_date, timezone="UTC", end_offset=1
)
