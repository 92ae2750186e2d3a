"""Progress: the lines a stage's callback gets (opening, cadence, phases, closing)."""

from esk_pipeline.pipeline.progress import SILENT, Progress


def test_lines_carry_counts_rate_and_time_left():
    lines: list[str] = []
    with Progress(
        4, description="labels", unit="texts", callback=lines.append, every_seconds=0
    ) as progress:
        progress.advance()
        progress.advance(2)
        progress.advance()
    assert lines[0] == "labels: started on 4 texts"
    assert lines[2].startswith("labels: 3/4 texts (75.0%), ")
    assert "texts/s" in lines[2] and lines[2].endswith(" left")
    assert lines[-1].startswith("labels: 4 texts in 0:00:00, ")
    assert len(lines) == 5  # opening, three advances, closing


def test_the_cadence_bounds_the_lines():
    lines: list[str] = []
    with Progress(100_000, callback=lines.append, every_seconds=3600) as progress:
        for _ in range(100_000):
            progress.advance()
    assert len(lines) == 2  # opening and closing only
    assert lines[-1].startswith("progress: 100,000 items in ")


def test_phases_name_their_lines_and_close_them():
    lines: list[str] = []
    progress = Progress(
        1_000, description="review_queue", unit="texts", callback=lines.append, every_seconds=0
    )
    progress.phase("ranking", 20, "candidates")
    progress.advance(20)
    progress.phase("queueing", 300, "items")
    progress.advance(300)
    progress.close()
    assert lines[0] == "review_queue: started on 1,000 texts"
    assert lines[1] == "review_queue · ranking: started on 20 candidates"
    assert lines[2].startswith("review_queue · ranking: 20/20 candidates (100.0%)")
    assert lines[3].startswith("review_queue · ranking: 20 candidates in ")
    assert lines[4] == "review_queue · queueing: started on 300 items"
    assert lines[-2].startswith("review_queue · queueing: 300 items in ")
    assert lines[-1].startswith("review_queue: 1,000 texts in ")


def test_time_left_is_unknown_before_the_first_item():
    progress = Progress(10, callback=lambda line: None)
    assert progress.eta_seconds is None
    assert progress.message().endswith("time left unknown")


def test_work_that_fails_gets_no_closing_line():
    lines: list[str] = []
    try:
        with Progress(10, callback=lines.append) as progress:
            progress.advance(3)
            raise RuntimeError("stopped")
    except RuntimeError:
        pass
    assert lines == ["progress: started on 10 items"]


def test_the_silent_reporter_takes_every_call():
    SILENT.phase("anything", 3, "items")
    SILENT.advance(3)
