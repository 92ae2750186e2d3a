"""Dagster types for the label tables, built from the label contract (`pipeline.label_contract`).

Each table asset declares one of these as its output type, so Dagster checks every frame at
the asset boundary and the UI shows the columns and the check's result. The types are
generated from the same declaration the library validates with, so the two cannot drift.
"""

import warnings
from collections.abc import Mapping

import pandas as pd
from dagster import BetaWarning, DagsterType, Failure, TypeCheck, TypeCheckContext
from dagster_pandas import PandasColumn, create_dagster_pandas_dataframe_type

from esk_pipeline.pipeline.label_contract import (
    DATASET_RECORD,
    LABEL_ROW,
    QUEUE_ROW,
    SYNTHETIC_ROW,
    TRUSTED_LABEL_ROW,
    Column,
)
from esk_pipeline.resources.day_stream import DayStream, KeptDay


def _pandas_column(name: str, spec: Column) -> PandasColumn:
    rules = {
        "non_nullable": not spec.nullable,
        "ignore_missing_vals": spec.nullable,
        "is_required": True,
    }
    if spec.values is not None:
        return PandasColumn.categorical_column(
            name, categories={v.value for v in spec.values}, **rules
        )
    if spec.kind == "float":
        return PandasColumn.float_column(name, **rules)
    if spec.kind == "bool":
        return PandasColumn.boolean_column(name, **rules)
    return PandasColumn.string_column(name, **rules)


def frame_type(name: str, shape: Mapping[str, Column], description: str) -> DagsterType:
    """A dagster-pandas DataFrame type with one constraint set per declared column."""
    # PandasColumn is marked beta; its warning would reach every command's terminal.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", BetaWarning)
        return create_dagster_pandas_dataframe_type(
            name=name,
            description=description,
            columns=[_pandas_column(column, spec) for column, spec in shape.items()],
        )


LabelFrame = frame_type("LabelFrame", LABEL_ROW, "Label rows of one day (the labeler's output).")
TrustedLabelFrame = frame_type(
    "TrustedLabelFrame", TRUSTED_LABEL_ROW, "One label per text with p_correct and its verdict."
)
QueueFrame = frame_type("QueueFrame", QUEUE_ROW, "The texts the review queue was asked to hold.")
SyntheticFrame = frame_type("SyntheticFrame", SYNTHETIC_ROW, "Paraphrases of trusted texts.")
DatasetRecordFrame = frame_type("DatasetRecordFrame", DATASET_RECORD, "Dataset records.")


def _check_days(context: TypeCheckContext, value: object) -> TypeCheck:
    """The days are checked as the IO manager makes them (a bad day stops the step, named):
    a `DayStream` of labels is never whole in memory."""
    if not isinstance(value, DayStream):
        return TypeCheck(False, description=f"expected a DayStream of days, got {type(value)}")
    value.check_each(lambda day, frame: _check_day(context, day, frame))
    return TypeCheck(
        True, description="each day is checked as it is made", metadata={"days": len(value.days)}
    )


def _check_day(context: TypeCheckContext, day: str, frame: object) -> None:
    if isinstance(frame, KeptDay):  # checked when it was written
        return
    check = (
        LabelFrame.type_check(context, frame)
        if isinstance(frame, pd.DataFrame)
        else TypeCheck(False, description="not a DataFrame")
    )
    if not check.success:
        raise Failure(f"labels of day {day} are not a LabelFrame: {check.description}")


def _check_parts(context: TypeCheckContext, value: object) -> TypeCheck:
    # Each part was checked against the contract when it was made (`trust._parts`); reading
    # every part here again would cost what the parts are there to avoid.
    if not isinstance(value, Mapping):
        return TypeCheck(False, description=f"expected {{part: DataFrame}}, got {type(value)}")
    return TypeCheck(True, metadata={"parts": len(value)})


TrustedLabelParts = DagsterType(
    name="TrustedLabelParts",
    type_check_fn=_check_parts,
    description="Trusted labels as parts ({part: TrustedLabelFrame}): a part per labels day, "
    "plus the decisions on texts no day holds.",
    typing_type=Mapping,
)
DailyLabelFrames = DagsterType(
    name="DailyLabelFrames",
    type_check_fn=_check_days,
    description="Label rows by day (a DayStream of LabelFrames, each day checked as it is made): "
    "a daily-partitioned labels value.",
    typing_type=DayStream,
)
