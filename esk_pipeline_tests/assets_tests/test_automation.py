"""Declarative automation is opt-in: off by default, and when on, new data flows downstream."""

import os
import subprocess
import sys
import textwrap


def test_no_asset_is_automated_by_default():
    from esk_pipeline.definitions import defs

    assert all(spec.automation_condition is None for spec in defs().resolve_all_asset_specs())


def test_with_automation_on_new_raw_logs_request_the_latest_day_downstream(project_env):
    script = textwrap.dedent(
        """
        import warnings
        import dagster
        from dagster import (
            AssetKey, AssetMaterialization, DagsterInstance, evaluate_automation_conditions,
        )
        with warnings.catch_warnings():  # loading the code location must not warn its users
            for shown in (dagster.BetaWarning, dagster.PreviewWarning, UserWarning):
                warnings.simplefilter("error", shown)
            from esk_pipeline.definitions import defs

        defs = defs()
        automated = sorted(
            s.key.to_user_string() for s in defs.resolve_all_asset_specs()
            if s.automation_condition is not None
        )
        print(",".join(automated))
        instance = DagsterInstance.ephemeral()
        latest = defs.resolve_job_def("daily_labels_job").partitions_def.get_last_partition_key()
        first = evaluate_automation_conditions(defs=defs, instance=instance)
        assert first.total_requested == 0, first.total_requested  # nothing upstream yet
        instance.report_runless_asset_event(AssetMaterialization("raw_logs", partition=latest))
        after = evaluate_automation_conditions(defs=defs, instance=instance, cursor=first.cursor)
        print(latest)
        print(sorted(after.get_requested_partitions(AssetKey("cleaned_texts"))))
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        env={**os.environ, "APP_AUTOMATION": "true"},
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert done.returncode == 0, done.stderr
    automated, latest, requested = done.stdout.strip().splitlines()[-3:]
    assert automated.split(",") == [
        "cleaned_texts",
        "dataset_versions",
        "labels",
        "rejected_texts",
        "review_queue",
        "synthetic_samples",
        "train_eval_splits",
    ]
    assert requested == str([latest])
