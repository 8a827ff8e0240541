"""Fake stage kinds that write a file and count their calls, and pipeline files built from them."""

from __future__ import annotations

import sys
import types
from pathlib import Path

import pytest
import yaml
from pydantic import Field

from alignkit.config import Section
from alignkit.errors import DataError
from alignkit.pipeline.stages import KINDS, StageKind


class NoteConfig(Section):
    """A fake stage: writes its value (and the note of the stage it reads) to note.txt."""

    value: int = Field(0, description="Written to note.txt.")
    source: str | None = Field(None, description="A directory whose note.txt is copied in.")


class TrainNoteConfig(NoteConfig):
    """A fake training stage: a run directory with a checkpoint and a final note."""

    output_dir: str = Field("runs/x", description="Set by the pipeline.")


def _text(cfg: NoteConfig) -> str:
    upstream = (Path(cfg.source) / "note.txt").read_text() if cfg.source else ""
    return f"{cfg.value}{upstream}"


class NoteKind(StageKind):
    """Writes ``note.txt``: its value, then the note of its source; records every call."""

    name = "note"
    summary = "a fake stage for tests"

    def __init__(self) -> None:
        self.calls: list[tuple[str, bool]] = []
        self.interrupt: set[str] = set()
        self.fail: set[str] = set()

    @property
    def schema(self):
        return NoteConfig

    def run(self, cfg, out_dir: Path, resume: bool) -> None:
        self.calls.append((out_dir.name, resume))
        out_dir.mkdir(parents=True, exist_ok=True)
        if out_dir.name in self.fail:
            raise DataError("bad_row", "a fake data problem", source="x.jsonl", row=3)
        self._finish(out_dir, _text(cfg))

    def _finish(self, out_dir: Path, text: str) -> None:
        if out_dir.name in self.interrupt:
            self.interrupt.discard(out_dir.name)
            raise KeyboardInterrupt
        (out_dir / "note.txt").write_text(text)

    def finished(self, out_dir: Path) -> bool:
        return (out_dir / "note.txt").is_file()


class TrainNoteKind(NoteKind):
    """A training-like fake: a checkpoint file first, so an interruption after it can resume."""

    name = "train-note"
    trains = True

    @property
    def schema(self):
        return TrainNoteConfig

    def run(self, cfg, out_dir: Path, resume: bool) -> None:
        self.calls.append((out_dir.name, resume))
        assert cfg.output_dir == out_dir.as_posix()
        out_dir.mkdir(parents=True, exist_ok=True)
        if not resume:
            (out_dir / "checkpoint").write_text("step 1")
        self._finish(out_dir, _text(cfg))

    def resumable(self, out_dir: Path) -> bool:
        return (out_dir / "checkpoint").is_file()


@pytest.fixture
def fake_kinds():
    """The fake kinds ``note`` and ``train-note``, registered for one test."""
    fakes = types.SimpleNamespace(note=NoteKind(), train=TrainNoteKind())
    KINDS["note"], KINDS["train-note"] = fakes.note, fakes.train
    yield fakes
    del KINDS["note"], KINDS["train-note"]


@pytest.fixture
def fake_report(monkeypatch):
    """A stand-in for ``alignkit.pipeline.report``: records calls, or raises when told."""
    fake = types.ModuleType("alignkit.pipeline.report")
    fake.calls, fake.error = [], None

    def write_report(directory: Path) -> Path:
        fake.calls.append(directory)
        if fake.error is not None:
            raise fake.error
        (directory / "report.html").write_text("<html></html>")
        return directory / "report.html"

    fake.write_report = write_report
    monkeypatch.setitem(sys.modules, "alignkit.pipeline.report", fake)
    return fake


@pytest.fixture
def write_pipeline(tmp_path):
    """Write a pipeline file from a dict of stages; returns its path (output_dir tmp/out)."""

    def write(stages: dict, name: str = "pipe.yaml", **top) -> Path:
        path = tmp_path / name
        document = {"output_dir": str(tmp_path / "out"), "seed": 0, **top, "stages": stages}
        path.write_text(yaml.safe_dump(document, sort_keys=False))
        return path

    return write


@pytest.fixture
def chain():
    """Stages a -> b -> c, and d beside them using only a (b is a training-like stage)."""
    return {
        "a": {"kind": "note", "value": 1},
        "b": {"kind": "train-note", "value": 2, "source": "${a}"},
        "c": {"kind": "note", "value": 3, "source": "${b}"},
        "d": {"kind": "note", "value": 4, "source": "${a}"},
    }
