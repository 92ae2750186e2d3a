"""Daily partitions by log date (UTC): how logs arrive and how backfills parallelise."""

from dagster import DailyPartitionsDefinition


def daily_partitions(start_date: str) -> DailyPartitionsDefinition:
    """Days from `start_date` (APP_PARTITIONS_START_DATE) through today."""
    # end_offset=1 includes today: today's logs are labelled as they arrive, and the partition
    # sensor re-requests a day whenever its row count grows.
    return DailyPartitionsDefinition(start_date=start_date, timezone="UTC", end_offset=1)
