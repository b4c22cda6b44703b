"""The node, in this process, for the pull's duration: its spool (recovered first), its receiver
(the C-MOVE destination: our AE title and port) and its workers (threads here), releasing into an
output folder or forwarding to destinations.  Nothing reaches the output but pipeline output,
and a spool item is let go only after its outcome is recorded (deid.service.Worker).
"""

from __future__ import annotations

import functools
import threading
import time
from pathlib import Path
from typing import Any

from deid import logs
from deid.settings import FolderDestinationSettings, ServeSettings
from deid.spool import Spool, StorageUnavailable, storage_failure

SETTLE_POLL = 0.1


class PullNode:
    """Receiver (when C-MOVE needs it) and worker threads around one spool; :meth:`settle` waits
    until every received object has an outcome (or waits for a destination)."""

    def __init__(self, settings: ServeSettings, *, listen: bool) -> None:
        self.settings = settings
        # the output folder (--out), a destination as any other: the pipeline checks it too
        self.out: Path | None = next((d.path for d in settings.destinations
                                      if isinstance(d, FolderDestinationSettings)), None)
        self.listen = listen
        self.log = logs.get_logger("deid.pull")
        self.stop_flag = threading.Event()
        self.threads: list[threading.Thread] = []
        self.crashes = 0
        self.lock: Any = None
        self.spool: Spool | None = None
        self.receiver: Any = None
        self.port = 0

    def start(self) -> None:
        """Lock the data folder, recover the spool, listen (C-MOVE), start the workers."""
        from deid.errors import UsageError
        from deid.service import clean_outgoing, prepare_data_folder

        self.lock = prepare_data_folder(self.settings)
        try:
            self.spool = Spool(self.settings.spool,
                               min_free_bytes=self.settings.min_free_mb * 1024 * 1024)
            recovered = self.spool.recover()
        except StorageUnavailable as exc:
            self.lock.close()
            raise UsageError(f"{self.settings.data}: the data folder refuses writes ({exc.kind}); "
                             "free space on its disk (or make it writable) and start again") from None
        clean_outgoing(self.settings)
        if any(recovered.values()):
            self.log.info("spool recovered", count=sum(recovered.values()))
        if self.listen:
            from deid.intake.receiver import Receiver

            self.receiver = Receiver(self.settings, self.spool)
            try:
                self.port = self.receiver.start()
            except OSError as exc:
                self.close()
                raise UsageError(f"--port: cannot listen on {self.settings.host}:"
                                 f"{self.settings.port} ({exc.strerror or exc.__class__.__name__})"
                                 ) from None
        for index in range(self.settings.workers):
            thread = threading.Thread(target=self._work, args=(index,), daemon=True,
                                      name=f"deid-pull-worker-{index}")
            thread.start()
            self.threads.append(thread)

    def _work(self, index: int) -> None:
        """One worker thread: a node Worker sending from this thread to every destination as the
        node sends (C-STORE with the destination's TLS, STOW-RS with its CA and credentials files,
        the output folder's writer); one that crashed is made again (its item goes back to the
        queue, its crash counted, as the node does)."""
        from deid.service import Worker

        serial = 0
        while not self.stop_flag.is_set():
            serial += 1
            name = f"pull{index}-{serial}"
            try:
                pipeline = self._pipeline()
                worker = Worker(self.settings, name, pipeline=pipeline,
                                open_records=functools.partial(self._records, pipeline))
                worker.run(self.stop_flag)
            except Exception as exc:  # noqa: BLE001
                if storage_failure(exc) is None:
                    self.crashes += 1
                    self.log.error("worker failed; starting it again", code="worker-died",
                                   error_type=exc.__class__.__name__)
                try:
                    assert self.spool is not None
                    self.spool.release_worker(name)
                except StorageUnavailable:
                    pass
                self.stop_flag.wait(1.0)

    def _records(self, pipeline: Any) -> Any:
        """A worker's audit trail (its own file in the records folder), its lines marked
        ``"source": "pull"``."""
        import uuid

        from deid.audit.trail import AuditTrail
        from deid.pipeline import make_private_dir

        deidentifier = pipeline.deidentifier
        return AuditTrail(make_private_dir(self.settings.records), key=pipeline.key,
                          profile=deidentifier.profile, run_id=uuid.uuid4().hex[:12], source="pull")

    def _pipeline(self) -> Any:
        from deid.engine.identity import load_lookup
        from deid.keys import load_key_file
        from deid.pipeline import Pipeline
        from deid.profile.loader import load_profile, with_deny_list
        from deid.released import DB_NAME, ReleasedIndex

        settings = self.settings
        profile = load_profile(settings.profile)
        if settings.deny_list is not None:
            profile = with_deny_list(profile, settings.deny_list)
        return Pipeline(
            profile, load_key_file(settings.key_file),
            out=self.out if self.out is not None else settings.outgoing,
            quarantine=settings.quarantine,
            lookup=load_lookup(settings.lookup) if settings.lookup else None,
            durable=False,  # the pipeline writes nothing it releases; the worker sends it
            debug=settings.records if settings.debug else None,
            released=ReleasedIndex(settings.records / DB_NAME),
        )

    def busy(self) -> int:
        """Objects received and not settled yet (queued or being worked on)."""
        assert self.spool is not None
        stats = self.spool.stats()
        return int(stats["queued"]) + int(stats["in_progress"])

    def waiting(self) -> int:
        """Objects waiting for a destination (retrying)."""
        assert self.spool is not None
        return int(self.spool.stats()["retrying"])

    def settle(self, timeout: float) -> bool:
        """Wait until nothing is queued or in progress; False when ``timeout`` passed first."""
        deadline = time.monotonic() + timeout
        while self.busy():
            if time.monotonic() > deadline:
                return False
            time.sleep(SETTLE_POLL)
        return True

    def close(self) -> None:
        """Stop listening (associations in progress may finish), stop the workers after their
        item, close the spool and the data folder's lock."""
        if self.receiver is not None:
            self.receiver.stop_accepting()
            self.receiver.wait_idle(30)
            self.receiver.abort_all()
            self.receiver = None
        self.stop_flag.set()
        for thread in self.threads:
            thread.join(self.settings.forward_timeout * 2 + 30)
        self.threads = []
        if self.spool is not None:
            self.spool.close()
            self.spool = None
        if self.lock is not None:
            self.lock.close()
            self.lock = None
