"""Where the index lives on disk: generations side by side, and `current`, a symlink naming the one in use.

A reindex builds a new generation beside the one in use and then moves `current` to it in one rename, so
readers never see half an index: each api process reopens the engine when `current` names another directory;
the worker (the only writer) follows it, catching up on what changed while the new one was built. Each
generation keeps `ticketflow.json`: up to when the documents stored in MongoDB are surely in it. A generation
made with an earlier schema (before the text fields' joined copies) is read as it is, and the worker, when it
starts, rebuilds it before writing (`Writer.start`).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import threading
import uuid
from datetime import datetime, timedelta

from services.search.engine import Engine, outdated
from shared.clock import now
from shared.events import format_time, parse_time

log = logging.getLogger(__name__)

CURRENT = "current"
MARKS = "ticketflow.json"
MARGIN = timedelta(minutes=5)  # catching up from a mark starts this much earlier: a handler in flight, clock steps


class IndexHome:
    """The directory that holds the generations (TICKETFLOW_SEARCH_INDEX_DIR/<namespace>); for OpenSearch,
    services/search/opensearch.py's OpenSearchHome does the same with indices and an alias."""

    def __init__(self, root: str) -> None:
        self.root = os.path.abspath(root)

    def open(self, path: str, *, create: bool = True) -> Engine:
        """The engine on generation `path` (`create=False`: FileNotFoundError when it holds no index yet)."""
        return Engine(path, create=create)

    def outdated(self, path: str) -> bool:
        """Whether generation `path` was made with an earlier schema than this code's (engine.build_schema)."""
        return outdated(path)

    def current(self) -> str | None:
        """The generation in use; None before the worker made the first one."""
        try:
            target = os.readlink(os.path.join(self.root, CURRENT))
        except (FileNotFoundError, OSError):
            return None
        return os.path.join(self.root, target)

    def new_generation(self) -> str:
        os.makedirs(self.root, exist_ok=True)
        stamp = now().strftime("%Y%m%dT%H%M%S")
        path = os.path.join(self.root, f"gen-{stamp}-{uuid.uuid4().hex[:6]}")
        os.makedirs(path)
        return path

    def switch(self, path: str) -> None:
        """Make `path` the generation in use, atomically (a new symlink renamed over the old one)."""
        link = os.path.join(self.root, f".{CURRENT}-{uuid.uuid4().hex[:6]}")
        os.symlink(os.path.basename(path), link)
        os.replace(link, os.path.join(self.root, CURRENT))

    def discard(self, path: str) -> None:
        """Remove a generation never made current (a build that failed); again if a file came while it went."""
        for _ in range(3):
            shutil.rmtree(path, ignore_errors=True)
            if not os.path.exists(path):
                return

    def prune(self, keep: set[str]) -> None:
        """Remove the generations not in `keep` (the one in use and the one before it, which a slow process
        may still be leaving)."""
        for name in os.listdir(self.root):
            path = os.path.join(self.root, name)
            if name.startswith("gen-") and path not in keep:
                shutil.rmtree(path, ignore_errors=True)

    @staticmethod
    def read_mark(path: str, name: str) -> datetime | None:
        try:
            with open(os.path.join(path, MARKS)) as file:
                value = json.load(file).get(name)
        except (FileNotFoundError, ValueError):
            return None
        return parse_time(value) if value else None

    @staticmethod
    def write_mark(path: str, **marks: datetime) -> None:
        target = os.path.join(path, MARKS)
        try:
            with open(target) as file:
                known = json.load(file)
        except (FileNotFoundError, ValueError):
            known = {}
        known.update({name: format_time(at) for name, at in marks.items()})
        temporary = f"{target}.{uuid.uuid4().hex[:6]}"
        with open(temporary, "w") as file:
            json.dump(known, file)
        os.replace(temporary, target)


class Reader:
    """An api process's engine on the generation in use, reopened when `current` moves."""

    def __init__(self, home: IndexHome) -> None:
        self.home = home
        self._engine: Engine | None = None
        self._lock = threading.Lock()

    def engine(self) -> Engine | None:
        """None while there is no index yet (the worker has not started once)."""
        path = self.home.current()
        if path is None:
            return None
        with self._lock:
            if self._engine is None or self._engine.path != path:
                try:
                    self._engine = self.home.open(path, create=False)
                except (FileNotFoundError, ValueError):  # removed or not written yet: keep the one it has
                    log.warning(
                        "search index %s cannot be opened; still reading %s", path, self._engine and self._engine.path
                    )
            return self._engine


class Writer:
    """The worker's engine: the only writer. Writes are committed in rounds (`commit_round`, on a timer)."""

    def __init__(self, home: IndexHome, docs) -> None:
        self.home, self.docs = home, docs  # docs: the TicketDocs store, to catch up from
        self.engine: Engine | None = None
        self._dirty = False
        self._lock = threading.Lock()  # the consumer's thread writes, the timer's commits or switches

    def start(self) -> None:
        """Open the generation in use (the first one, if none), and index what its last commit may have missed.
        A generation of an earlier schema is rebuilt first (`rebuild`), the apis reading it meanwhile."""
        path = self.home.current()
        if path is None:
            path = self.home.new_generation()
            self.home.switch(path)
        elif self.home.outdated(path):
            path = self._rebuild_outdated(path)
        self._open(path, self.home.read_mark(path, "committed_through"))
        if self.home.current() != path:  # another worker made the first one meanwhile: start again on it
            self.close()
            raise RuntimeError("the index in use changed while this worker opened it")

    def upsert(self, doc: dict) -> None:
        with self._lock:
            self.engine.upsert(doc)
            self._dirty = True

    def _rebuild_outdated(self, path: str) -> str:
        """A generation of the current schema in place of `path`, built from the stored documents as `ticketflow
        search reindex` builds one; its path. The old one's writer is held meanwhile: a second worker waits."""
        old = self.home.open(path)
        old.take_writer()
        try:
            if self.home.current() != path:  # another worker rebuilt it before this one took the writer
                return self.home.current()
            log.info("search index %s: made with an earlier schema, rebuilding", os.path.basename(path))
            path, count = rebuild(self.home, self.docs)
            log.info("search index %s: rebuilt, %d stored documents indexed", os.path.basename(path), count)
            return path
        finally:
            old.close()

    def commit_round(self) -> None:
        """Commit what was written since the last round; follow `current` when a reindex moved it."""
        through = now()
        with self._lock:
            path = self.home.current()
            if path is not None and path != self.engine.path:
                self._follow(path)
            if self._dirty:
                self.engine.commit()
                self._dirty = False
                self.home.write_mark(self.engine.path, committed_through=through)

    def close(self) -> None:
        with self._lock:
            if self.engine is not None:
                self.engine.close()

    def _follow(self, path: str) -> None:
        log.info("search index: moving to %s", path)
        self.engine.close()
        self._open(path, self.home.read_mark(path, "built_from"))

    def _open(self, path: str, since: datetime | None) -> None:
        """Open `path` and index the stored documents changed since `since` (all of them when None)."""
        self.engine = self.home.open(path)
        self.engine.take_writer()  # a second worker stops here until the first lets go: one writer
        caught_up = index_stored(self.engine, self.docs, None if since is None else since - MARGIN)
        self.engine.commit()
        self.home.write_mark(path, committed_through=now())
        if caught_up:
            log.info("search index %s: %d stored documents indexed on opening", os.path.basename(path), caught_up)


def index_stored(engine: Engine, docs, since: datetime | None) -> int:
    """Upsert the stored documents changed since `since` (all when None); how many."""
    count = 0
    for doc in docs.indexable(since):
        engine.upsert(doc.document())
        count += 1
    return count


def rebuild(home: IndexHome, docs) -> tuple[str, int]:
    """A new generation from the stored documents, made current; (its path, documents indexed).

    The worker keeps indexing into the old generation meanwhile; what it stored during the build is indexed
    again here (from `built_from`), and once more by the worker when it moves (from the same mark).
    """
    previous = home.current()
    path = home.new_generation()
    engine = None
    try:
        engine = home.open(path)
        started = now()
        count = index_stored(engine, docs, None)
        engine.commit()
        built_from = now()
        index_stored(engine, docs, started - MARGIN)  # what changed while the first pass ran
        engine.commit()
        engine.close()
        home.write_mark(path, built_from=built_from, committed_through=built_from)
    except BaseException:
        if engine is not None:  # its writer's threads and lock file first: they would write into what is removed
            with contextlib.suppress(Exception):
                engine.close()
        home.discard(path)  # half built: a build tried again (the worker's, every second) must not pile them up
        raise
    home.switch(path)
    home.prune({path} | ({previous} if previous else set()))
    return path, count
