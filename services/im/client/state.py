"""What a client keeps between runs: its place in the inbox and the sends not yet acked.

`Store` is pluggable; `FileStore` (the default) writes one JSON file per user and server, atomically.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol
from urllib.parse import urlsplit

import orjson

__all__ = ["FileStore", "MemoryStore", "PendingSend", "SavedState", "SeqTracker", "Store", "default_store_path"]


class SeqTracker:
    """Which seqs of a gapless sequence have been seen: all up to `mark`, plus the few in `above`."""

    def __init__(self, mark: int = 0, above: list[int] | None = None) -> None:
        self.mark = mark
        self.above = {seq for seq in above or () if seq > mark}
        self._advance()

    def seen(self, seq: int) -> bool:
        return seq <= self.mark or seq in self.above

    def note(self, seq: int) -> bool:
        """Record `seq`; False if it had been seen already."""
        if self.seen(seq):
            return False
        self.above.add(seq)
        self._advance()
        return True

    def fill_to(self, seq: int) -> None:
        """Everything up to `seq` is known (a finished sync said so), gaps included."""
        if seq > self.mark:
            self.mark = seq
            self.above = {s for s in self.above if s > seq}
            self._advance()

    @property
    def has_gap(self) -> bool:
        """Some seq above `mark` was seen while one below it was not."""
        return bool(self.above)

    def _advance(self) -> None:
        while self.mark + 1 in self.above:
            self.mark += 1
            self.above.discard(self.mark)


@dataclass(slots=True)
class PendingSend:
    """A send, edit or recall kept until its ack; `status` "failed" once the server refused it for good.

    A send names its conversation (`to` or `group`); an edit or a recall names `message_id` (an
    edit's new text in `content`, a recall's `content` empty).
    """

    cid: str
    content: str
    to: int | None
    group: int | None
    created_at: int
    """Unix ms, when the application sent it; resends go out in this order."""
    status: Literal["pending", "failed"] = "pending"
    error: str | None = None
    unanswered: int = 0
    """Transmissions that got neither an ack nor an error (the connection went away meanwhile)."""
    kind: Literal["send", "edit", "recall"] = "send"
    message_id: int | None = None

    def frame(self) -> dict[str, Any]:
        """The client frame that carries it."""
        if self.kind == "send":
            where = {"group": self.group} if self.group is not None else {"to": self.to}
            return {"type": "send", "cid": self.cid, **where, "content": self.content}
        if self.kind == "edit":
            return {"type": "edit", "cid": self.cid, "id": self.message_id, "content": self.content}
        return {"type": "recall", "cid": self.cid, "id": self.message_id}


@dataclass(slots=True)
class SavedState:
    mark: int = 0
    above: list[int] = field(default_factory=list)
    pending: list[PendingSend] = field(default_factory=list)


class Store(Protocol):
    def load(self) -> SavedState | None: ...

    def save(self, state: SavedState) -> None: ...


class MemoryStore:
    """Keeps the state for the life of the process (tests, or clients that sync from 0 each run)."""

    def __init__(self) -> None:
        self.state: SavedState | None = None

    def load(self) -> SavedState | None:
        return self.state

    def save(self, state: SavedState) -> None:
        self.state = SavedState(state.mark, list(state.above), [PendingSend(**asdict(p)) for p in state.pending])


class FileStore:
    """One JSON file, replaced atomically (write, fsync, rename), so a crash leaves the old or the new."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)

    def load(self) -> SavedState | None:
        try:
            raw = orjson.loads(self.path.read_bytes())
        except FileNotFoundError:
            return None
        return SavedState(
            mark=int(raw.get("mark", 0)),
            above=[int(seq) for seq in raw.get("above", [])],
            pending=[PendingSend(**p) for p in raw.get("pending", [])],
        )

    def save(self, state: SavedState) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        data = orjson.dumps(asdict(state))
        fd, temporary = tempfile.mkstemp(dir=self.path.parent, prefix=self.path.name, suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(data)
                out.flush()
                os.fsync(out.fileno())
            os.replace(temporary, self.path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise


def default_store_path(base_url: str, user_id: int) -> Path:
    """`$XDG_STATE_HOME/imcluster/<host_port>/<user_id>.json` (XDG default: ~/.local/state)."""
    root = Path(os.environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state")
    server = urlsplit(base_url).netloc.replace(":", "_") or "server"
    return root / "imcluster" / server / f"{user_id}.json"
