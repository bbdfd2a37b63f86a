"""`eai demo`: the plan of commands, skipping finished steps, stopping at a failure, and (slow)
the real thing: sample data to a Label Studio project ready for review, twice (the second run
resumes and creates nothing new)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from eai.toolkit.demo import DemoLayout, Step, next_commands, plan, run_steps


def argv0(steps: list[Step]) -> list[str]:
    return [" ".join(s.argv[:2]) if s.argv[0] in ("dataset", "tokenizer", "model", "review")
            else s.argv[0] for s in steps]


def test_plan_on_the_sample_set_runs_every_command_in_order(tmp_path):
    steps = plan(DemoLayout(tmp_path / "w"), limit=5, tokenizer_steps=50)
    assert argv0(steps) == ["sample-data", "convert", "dataset split", "tokenizer train",
                            "model init", "draft-explanations", "review server",
                            "review push"]
    tok = steps[3].argv
    assert tok[tok.index("--steps") + 1] == "50" and "--split" in tok
    assert steps[5].argv[-2:] == ["--limit", "5"]
    # every step is a command a user can paste
    assert steps[1].command == f"eai convert {tmp_path}/w/raw -o {tmp_path}/w/dataset"


def test_plan_uses_a_converted_dataset_as_it_is(tmp_path, sample_dataset):
    steps = plan(DemoLayout(tmp_path / "w"), sample_dataset)
    assert argv0(steps)[:2] == ["dataset split", "tokenizer train"]
    assert str(sample_dataset) in steps[-1].argv  # pushed with the clips of that dataset
    pull, finetune = next_commands(DemoLayout(tmp_path / "w"), sample_dataset)
    assert pull.startswith("eai review pull --project 'eai demo' -o ")
    assert f"--dataset {sample_dataset}" in finetune


def test_plan_converts_raw_files(tmp_path):
    raw = tmp_path / "mocap"
    raw.mkdir()
    steps = plan(DemoLayout(tmp_path / "w"), raw)
    assert steps[0].argv == ["convert", str(raw), "-o", str(tmp_path / "w" / "dataset")]


def test_finished_steps_are_skipped_and_a_failure_stops_the_rest(tmp_path):
    ran: list[str] = []
    steps = [Step("a", ["a"], lambda: True), Step("b", ["b"]), Step("c", ["c"]),
             Step("d", ["d"])]
    results = run_steps(steps, lambda argv: ran.append(argv[0]) or (2 if argv == ["c"] else 0))
    assert ran == ["b", "c"]
    assert [r.status for r in results] == ["skipped", "done", "failed"]


def test_a_completed_tokenizer_or_model_is_not_redone(tmp_path):
    layout = DemoLayout(tmp_path / "w")
    steps = {s.title: s for s in plan(layout)}
    assert not steps["skeleton tokenizer"].done()
    layout.tokenizer.mkdir(parents=True)
    (layout.tokenizer / "tokenizer.safetensors").write_bytes(b"")  # half-written: not done
    assert not steps["skeleton tokenizer"].done()
    (layout.tokenizer / "tokenizer.json").write_text("{}")
    assert steps["skeleton tokenizer"].done()
    assert not steps["draft explanations"].done()  # resumable itself: always runs


def test_missing_data_is_a_clear_error(tmp_path):
    from typer.testing import CliRunner

    from eai.cli import app

    r = CliRunner().invoke(app, ["demo", "--data", str(tmp_path / "nope"), "--work",
                                 str(tmp_path / "w")])
    assert r.exit_code == 2 and "no such file or folder" in " ".join(r.output.split())


@pytest.mark.slow
@pytest.mark.labelstudio
def test_demo_end_to_end_and_resumed(tmp_path):
    """The real demo (SmolLM2, a real Label Studio), small: 3 drafts, a short tokenizer."""
    from review_support import need_label_studio

    need_label_studio()
    env = {**os.environ, "EAI_HOME": str(tmp_path / "home"), "OMP_NUM_THREADS": "1"}
    for k in ("LABEL_STUDIO_URL", "LABEL_STUDIO_API_KEY"):
        env.pop(k, None)
    work = tmp_path / "w"
    cmd = [sys.executable, "-m", "eai.cli", "demo", "--work", str(work), "--limit", "3",
           "--tokenizer-steps", "30", "--threads", "1"]
    try:
        first = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900)
        assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
        out = first.stdout
        assert "Ready for review" in out and "http://127.0.0.1:" in out
        assert "tasks created 3" in out
        assert f"eai review pull --project 'eai demo' -o {work}/curated.jsonl" in out
        assert (work / "m0" / "eai.json").is_file()
        assert len((work / "drafts.jsonl").read_text().splitlines()) == 3

        again = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
        assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
        for title in ("convert", "skeleton tokenizer", "EAI-LLM model"):
            assert f"{title}: already done (skipped)" in again.stdout
        assert "0 drafted, 3 already drafted" in again.stdout + again.stderr
        assert "tasks created 0" in again.stdout
        assert "already running" in again.stdout
        assert len((work / "drafts.jsonl").read_text().splitlines()) == 3
    finally:
        subprocess.run([sys.executable, "-m", "eai.cli", "review", "server", "stop"], env=env,
                       capture_output=True, timeout=120)
