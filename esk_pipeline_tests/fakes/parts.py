"""A part store that counts what is read and written of it."""

from collections import Counter

import pandas as pd

from esk_pipeline.pipeline.parts import MemoryPartStore


class CountingPartStore(MemoryPartStore):
    """Parts in memory, with how often each address was read and written."""

    def __init__(self) -> None:
        super().__init__()
        self.reads: Counter[str] = Counter()
        self.writes: Counter[str] = Counter()

    def read(self, address: str, columns: list[str] | None = None) -> pd.DataFrame:
        self.reads[address] += 1
        return super().read(address, columns)

    def write(self, address: str, frame: pd.DataFrame) -> None:
        self.writes[address] += 1
        super().write(address, frame)
