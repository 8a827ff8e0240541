"""A pipeline directory's memory: ``pipeline.json`` (what ran) and each stage's fingerprint.

``pipeline.json`` holds one record per stage::

    {"stages": [{"name": "sft", "kind": "sft", "fingerprint": "3f1c...",
                 "status": "done", "seconds": 61.2, "started": 1700000000.0,
                 "finished": 1700000061.2}, ...]}

``status`` is ``running`` while a stage runs (and stays so if the process is
killed), ``done`` when it finished, ``failed`` when it raised. Both files of
the directory are written atomically, so a crash leaves the old or the new
version, never half of one.

A stage's fingerprint is the SHA-256 of the canonical JSON of its kind, its
fully resolved configuration and the fingerprints of the stages it uses. A
change anywhere upstream therefore changes the fingerprint of every stage
downstream of it, and of no other.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

from alignkit.atomic import atomic_write_text
from alignkit.errors import AlignkitError
from alignkit.pipeline.spec import Pipeline

STATE_FILE = "pipeline.json"
RESOLVED_FILE = "pipeline.yaml"
Status = Literal["done", "running", "failed"]


def fingerprints(pipeline: Pipeline) -> dict[str, str]:
    """Stage name -> fingerprint (hex), in run order."""
    found: dict[str, str] = {}
    for stage in pipeline.stages:
        payload = {"kind": stage.kind.name, "config": stage.config.model_dump(mode="json"),
                   "uses": {name: found[name] for name in stage.uses}}
        canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"),
                               ensure_ascii=False)
        found[stage.name] = hashlib.sha256(canonical.encode("utf-8")).hexdigest()
    return found


@dataclass
class StageRecord:
    """One stage's line of ``pipeline.json``."""

    name: str
    kind: str
    fingerprint: str
    status: Status
    seconds: float
    started: float
    finished: float | None


class PipelineState:
    """The records of ``pipeline.json``; every change is saved at once.

    Attributes:
        path: the ``pipeline.json`` file.
        records: stage name -> record.
    """

    def __init__(self, path: Path, records: dict[str, StageRecord]) -> None:
        self.path = path
        self.records = records

    @classmethod
    def load(cls, directory: Path) -> PipelineState:
        """The state of the pipeline directory ``directory`` (empty when it has none yet).

        Raises:
            AlignkitError: ``pipeline.json`` exists but is not a state file.
        """
        path = directory / STATE_FILE
        if not path.is_file():
            return cls(path, {})
        try:
            rows = json.loads(path.read_text(encoding="utf-8"))["stages"]
            records = [StageRecord(**row) for row in rows]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise AlignkitError(f"{path} is not a pipeline state file ({exc}); delete it to "
                                "run every stage again") from None
        return cls(path, {r.name: r for r in records})

    def get(self, name: str) -> StageRecord | None:
        return self.records.get(name)

    def started(self, name: str, kind: str, fingerprint: str, *, resumed: bool) -> None:
        """Mark ``name`` running; a resumed stage keeps the seconds already spent on it."""
        before = self.records.get(name)
        spent = before.seconds if resumed and before is not None else 0.0
        self.records[name] = StageRecord(name, kind, fingerprint, "running", spent,
                                         round(time.time(), 3), None)
        self.save()

    def ended(self, name: str, status: Status, seconds: float) -> None:
        """Mark ``name`` done or failed after ``seconds`` more of work."""
        record = self.records[name]
        record.status = status
        record.seconds = round(record.seconds + seconds, 3)
        record.finished = round(time.time(), 3)
        self.save()

    def forget(self, names: list[str]) -> None:
        """Drop the records of ``names``: their outputs were built from an output now replaced."""
        dropped = [name for name in names if self.records.pop(name, None) is not None]
        if dropped:
            self.save()

    def keep_only(self, order: list[str]) -> None:
        """Keep the records of the stages in ``order`` (the pipeline's), in that order."""
        self.records = {name: self.records[name] for name in order if name in self.records}

    def save(self) -> None:
        rows = [asdict(record) for record in self.records.values()]
        self.path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(self.path, json.dumps({"stages": rows}, indent=2) + "\n")
