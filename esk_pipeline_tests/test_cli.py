from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from esk_pipeline.cli import main, reviewer_page_hint
from esk_pipeline.cli._output import ProgressLines
from esk_pipeline.pipeline.splits import DataWriter, DataWriterConfig
from esk_pipeline.pipeline.versions import DataStorage, DataStorageConfig
from esk_pipeline.settings import AppSettings, get_settings


@pytest.fixture
def store(tmp_path: Path) -> Path:
    """A store with v1.0.0 and v1.1.0 (one relabel, two added records)."""
    human = {"label_origin": "human_verified"}
    records = [{"text": f"запрос {i}", "domain": ["a", "b"][i % 2], **human} for i in range(40)]
    config = DataWriterConfig(
        output_dir=tmp_path / "datasets", min_eval_samples=1, balance_domains=False
    )
    storage = DataStorage(DataStorageConfig(storage_dir=tmp_path / "store"))
    storage.commit_dataset(DataWriter(config).write_datasets(records, "one")[0].parent)
    changed = [
        *records,
        {"text": "новый 1", "domain": "a", **human},
        {"text": "новый 2", "domain": "b", **human},
    ]
    changed[0] = {"text": changed[0]["text"], "domain": "b", **human}
    storage.commit_dataset(DataWriter(config).write_datasets(changed, "two")[0].parent)
    return tmp_path / "store"


def _run(store: Path, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["versions", "--storage-dir", str(store), *args])
    return result.exit_code, result.output


def test_list_and_show_print_tables_and_json(store):
    code, out = _run(store, "list")
    assert code == 0
    assert "version" in out.splitlines()[0]
    assert "* v1.1.0" in out and "v1.0.0" in out
    code, out = _run(store, "list", "--json")
    assert [v["version"] for v in json.loads(out)] == ["v1.0.0", "v1.1.0"]
    code, out = _run(store, "list", "--status", "stable")
    assert (code, out.strip()) == (0, "no versions")
    code, out = _run(store, "show", "v1.0.0", "--json")
    assert json.loads(out)["domain_distribution"] == {"a": 20, "b": 20}
    code, out = _run(store, "show", "current")
    assert code == 0 and out.startswith("v1.1.0 (draft)")


def test_status_marks_a_version_stable_or_deprecated(store):
    code, out = _run(store, "status", "v1.0.0", "stable")
    assert code == 0 and out.startswith("v1.0.0 (stable)")
    code, out = _run(store, "list", "--status", "stable")
    assert "v1.0.0" in out and "v1.1.0" not in out
    code, out = _run(store, "status", "current", "deprecated")
    assert code == 0 and out.startswith("v1.1.0 (deprecated)")
    code, out = _run(store, "status", "v1.0.0", "archived")
    assert code == 2 and "archived" in out  # the store archives; people do not


def test_diff_tag_checkout_and_verify(store):
    code, out = _run(store, "diff", "v1.0.0", "v1.1.0")
    assert code == 0
    assert "2 added, 0 removed, 1 relabelled" in out
    code, out = _run(store, "diff", "v1.0.0", "v1.1.0", "--json")
    assert json.loads(out)["relabel_pairs"] == {"a -> b": 1}
    assert _run(store, "tag", "v1.0.0", "production") == (0, "production -> v1.0.0\n")
    code, out = _run(store, "checkout", "production")
    assert code == 0 and out.startswith("current -> v1.0.0")
    code, out = _run(store, "verify")
    assert code == 0 and out.startswith("OK")
    eval_file = store / "versions" / "v1.1.0" / "eval.jsonl"
    versions = DataStorage(DataStorageConfig(storage_dir=store))
    blobs = {v: versions.get_version(v).files["eval.jsonl"].sha256 for v in ("v1.0.0", "v1.1.0")}
    eval_file.chmod(0o644)
    eval_file.write_text(eval_file.read_text().replace("запрос", "ЗАПРОС", 1))
    code, out = _run(store, "verify", "--json")
    assert code == 1
    # Versions whose eval.jsonl is the same content share one blob, so each reports the change.
    assert json.loads(out)["problems"] == [
        f"{v}: eval.jsonl checksum mismatch (file was changed)"
        for v in ("v1.0.0", "v1.1.0")
        if blobs[v] == blobs["v1.1.0"]
    ]


def test_export_and_import(store, tmp_path):
    archive = tmp_path / "v1.zip"
    assert _run(store, "export", "v1.0.0", str(archive))[0] == 0
    other = tmp_path / "other"
    code, out = _run(other, "import", str(archive))
    assert code == 0 and out.startswith("imported v1.0.0")
    archive.write_bytes(b"not an archive")
    code, out = _run(other, "import", str(archive), "--as", "v2.0.0")
    assert code == 1
    assert out.startswith("Error: ") and "Traceback" not in out


def test_errors_are_one_line_and_exit_non_zero(store):
    code, out = _run(store, "show", "v9.9.9")
    assert code == 1
    assert out == "Error: no version or tag 'v9.9.9' (known: v1.0.0, v1.1.0)\n"
    code, out = _run(store, "tag", "v1.0.0", "bad tag")
    assert code == 1 and len(out.splitlines()) == 1


def test_storage_dir_comes_from_settings(store, monkeypatch):
    monkeypatch.setenv("DATA_STORAGE_STORAGE_DIR", str(store))
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(main, ["versions", "list", "--json"])
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 0
    assert len(json.loads(result.output)) == 2


def test_commit_a_dataset_folder(store, tmp_path):
    code, out = _run(store, "commit", str(tmp_path / "datasets" / "one"), "--status", "stable")
    assert code == 0 and out.startswith("committed v1.2.0 (stable)")


@pytest.mark.parametrize("name", ["prod\n", "prod\r\n", "prod\nstaging"])
def test_a_tag_with_a_newline_is_refused(store, name):
    code, out = _run(store, "tag", "v1.0.0", name)
    assert code == 1 and "Error" in out
    code, out = _run(store, "show", "v1.0.0", "--json")
    assert json.loads(out)["tags"] == []


def test_a_version_name_with_a_newline_is_refused(store, tmp_path):
    exported = tmp_path / "v1.tar.gz"
    assert _run(store, "export", "v1.0.0", str(exported))[0] == 0
    code, out = _run(tmp_path / "other", "import", str(exported), "--as", "v2.0.0\n")
    assert code == 1 and "Error" in out
    assert not (tmp_path / "other" / "versions").exists() or not any(
        (tmp_path / "other" / "versions").iterdir()
    )


@pytest.mark.slow
def test_the_demo_prints_progress_and_no_warning(project_env: Path) -> None:
    """`esk-data demo` from a fresh folder, as a new user runs it: each long stage prints
    its progress with counts (plain lines, since stdout is a pipe here), the run's log holds
    the same lines under their steps, and stderr holds no warning (library warnings are
    either translated into the project's words or avoided at source)."""
    import os
    import re
    import shutil
    import subprocess
    import sys

    from dagster import DagsterInstance

    project = Path(__file__).resolve().parents[1]
    # A fresh clone's files the demo reads from its folder; DAGSTER_HOME unset, as there.
    shipped = project_env / "deploy" / "local"
    shipped.mkdir(parents=True)
    shutil.copyfile(project / "deploy" / "local" / "dagster.yaml", shipped / "dagster.yaml")
    env = {**os.environ, "APP_TAXONOMY_PATH": str(project / "data" / "taxonomy.yaml")}
    env.pop("DAGSTER_HOME")
    result = subprocess.run(
        [str(Path(sys.executable).with_name("esk-data")), "demo", "--rows", "800"],
        cwd=project_env,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "dataset version v1.0.0" in result.stdout
    assert "warning" not in result.stderr.lower(), result.stderr[-3000:]

    printed = result.stdout.splitlines()
    closing = {}  # stage -> (count, unit) of its closing line
    for line in printed:
        if match := re.fullmatch(r"([a-z_]+): ([\d,]+) (\w+) in \d+:\d\d:\d\d, [\d,]+ \3/s", line):
            closing[match[1]] = (int(match[2].replace(",", "")), match[3])
    assert closing["seed"] == (800, "rows")
    assert closing["raw_logs"] == (800, "rows")
    assert closing["cleaned_texts"] == (800, "texts")
    labelled = closing["labels"][0]
    assert 0 < labelled < 800  # the ETL rejected some rows
    assert closing["trusted_labels"] == (7, "days")  # the sample week
    assert {"review_queue", "train_eval_splits"} <= closing.keys()
    assert any(line.startswith("review_queue · queueing: ") for line in printed)
    assert any(line.startswith("train_eval_splits · writing: ") for line in printed)

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("DAGSTER_HOME", str(project_env / ".dagster_home"))
        with DagsterInstance.get() as instance:
            logged = {
                (entry.step_key, entry.user_message)
                for run in instance.get_runs()
                for entry in instance.all_logs(run.run_id)
                if not entry.is_dagster_event
            }
    # Every step's progress lines are in the run's log under that step, as printed.
    for line in printed:
        stage = line.split(":")[0].split(" · ")[0]
        if stage in closing and stage != "seed":
            assert (stage, line) in logged, line


def test_the_demo_hint_carries_a_fresh_token_the_server_accepts(monkeypatch):
    hints = [reviewer_page_hint() for _ in range(2)]
    assert hints[0] != hints[1]
    tokens = hints[0].split("'")[1]
    monkeypatch.setenv("APP_API_TOKENS", tokens)
    assert list(AppSettings().api_tokens) == ["alice"]


def test_control_characters_from_a_version_are_escaped_when_printed(store, tmp_path):
    hostile = "clean\x1b[2J\x1b[31mred\rover\x07"
    code, _ = _run(store, "commit", str(tmp_path / "datasets" / "one"), "--description", hostile)
    assert code == 0
    for command in (["show", "latest"], ["list"]):
        code, out = _run(store, *command)
        assert code == 0
        assert "\x1b" not in out and "\r" not in out and "\x07" not in out
        assert "clean\\x1b[2J\\x1b[31mred" in out


def test_control_characters_in_the_records_are_escaped_when_printed(tmp_path):
    # Domains come from the records (an imported archive's too): `show` lists them, `diff`
    # names them in its summary, its table and the relabelled examples.
    hostile = "evil\x1b[2J\x1b]0;pwned\x07\r"
    human = {"label_origin": "human_verified"}
    records = [{"text": f"запрос {i}", "domain": ["a", "b"][i % 2], **human} for i in range(40)]
    config = DataWriterConfig(output_dir=tmp_path / "ds", min_eval_samples=1, balance_domains=False)
    storage = DataStorage(DataStorageConfig(storage_dir=tmp_path / "store"))
    storage.commit_dataset(DataWriter(config).write_datasets(records, "one")[0].parent)
    records[:4] = [{**record, "domain": hostile} for record in records[:4]]
    storage.commit_dataset(DataWriter(config).write_datasets(records, "two")[0].parent)
    for command in (["show", "v1.1.0"], ["diff", "v1.0.0", "v1.1.0"]):
        code, out = _run(tmp_path / "store", *command)
        assert code == 0
        assert "\x1b" not in out and "\r" not in out and "\x07" not in out, command
        assert "evil\\x1b[2J" in out, command


def test_import_leaves_current_alone_unless_asked(store, tmp_path):
    archive = tmp_path / "v1.tar.gz"
    assert _run(store, "export", "v1.0.0", str(archive))[0] == 0
    assert _run(store, "import", str(archive), "--as", "v2.0.0")[0] == 0
    assert json.loads(_run(store, "show", "current", "--json")[1])["version"] == "v1.1.0"
    assert _run(store, "import", str(archive), "--as", "v3.0.0", "--checkout")[0] == 0
    assert json.loads(_run(store, "show", "current", "--json")[1])["version"] == "v3.0.0"


def test_an_import_never_shows_the_imported_version_as_current_unless_asked(store, tmp_path):
    # Every snapshot the import wrote keeps `current`: a reader at any moment (or a crash right
    # after the import's commit) sees the version that was current, never the imported one.
    archive = tmp_path / "v1.tar.gz"
    assert _run(store, "export", "v1.0.0", str(archive))[0] == 0
    seen = set(Path(store, "registry").iterdir())
    assert _run(store, "import", str(archive), "--as", "v2.0.0")[0] == 0
    written = sorted(set(Path(store, "registry").iterdir()) - seen)
    assert written
    assert {json.loads(path.read_text())["current"] for path in written} == {"v1.1.0"}
    # Asking for it makes it current, also when that version is in the store already.
    assert _run(store, "import", str(archive), "--as", "v2.0.0", "--checkout")[0] == 0
    assert json.loads(_run(store, "show", "current", "--json")[1])["version"] == "v2.0.0"


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_lines_on_a_terminal_rewrite_one_line_per_stage():
    terminal = _Terminal()
    lines = ProgressLines(terminal)
    lines.progress("labels: started on 10 texts")
    lines.progress("labels: 5/10 texts (50.0%), 5 texts/s, 0:00:01 left")
    lines.progress("labels: 10 texts in 0:00:02, 5 texts/s")
    lines.progress("trusted_labels: started on 10 texts")
    lines.echo("done")
    assert terminal.getvalue() == (
        "\r\x1b[Klabels: started on 10 texts"
        "\r\x1b[Klabels: 5/10 texts (50.0%), 5 texts/s, 0:00:01 left"
        "\r\x1b[Klabels: 10 texts in 0:00:02, 5 texts/s\n"
        "\r\x1b[Ktrusted_labels: started on 10 texts\n"
        "done\n"
    )


def test_progress_lines_elsewhere_are_plain_lines():
    pipe = io.StringIO()
    lines = ProgressLines(pipe)
    lines.progress("labels: started on 10 texts")
    lines.progress("labels: 10 texts in 0:00:02, 5 texts/s")
    lines.echo("done")
    assert pipe.getvalue() == (
        "labels: started on 10 texts\nlabels: 10 texts in 0:00:02, 5 texts/s\ndone\n"
    )


def test_settings_lists_every_variable_with_its_default_and_meaning():
    from esk_pipeline.settings import Settings

    result = CliRunner().invoke(main, ["settings", "--json"])
    assert result.exit_code == 0
    docs = {d["variable"]: d for d in json.loads(result.output)}
    expected = {
        f"{group.annotation.model_config['env_prefix']}{name}".upper()
        for group in Settings.model_fields.values()
        for name in group.annotation.model_fields
    }
    assert set(docs) == expected
    assert [v for v, d in docs.items() if not d["description"]] == []
    assert docs["LABELER_BATCH_SIZE"]["default"] == "20"
    table = CliRunner().invoke(main, ["settings"]).output
    assert "ETL_MASK_PII" in table and "texts per LLM request" in table
