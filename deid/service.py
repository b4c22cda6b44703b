"""The forwarding node: receiver + worker processes + status, with a drain on SIGTERM.

The receiver (threads of this process) only puts objects on the spool.  Each worker process
claims an item, de-identifies it through :class:`~deid.pipeline.Pipeline` (which alone decides
quarantine), hands the released bytes, from memory, to every destination's sender
(:mod:`deid.sender`: one process per destination owns its association, shared by every worker),
records the outcome, and only then releases the original (in batches: the items a worker
settled one after the other share one fsync of their records and one spool commit).  Items that
cannot be forwarded wait in the spool (retry with backoff) and survive a restart.  Only pipeline
output is ever sent: nothing un-de-identified reaches a destination.

When the data folder's file system refuses writes (full, read-only, failing), a worker gives its
item back untouched (no attempt, no crash counted), waits (:class:`StorageWait`: doubling pauses,
one log line) and carries on by itself once writes succeed again; the node's health says why.
"""

from __future__ import annotations

import dataclasses
import fcntl
import multiprocessing
import os
import shutil
import signal
import time
from collections.abc import Callable, Generator
from typing import TYPE_CHECKING, Any

from deid import logs
from deid.doorbell import Doorbell
from deid.errors import ObjectError, UsageError
from deid.forward import Delivery
from deid.outcome import Forwarded, Outcome, Quarantined, Released, Retry, Written
from deid.pipeline import make_private_dir
from deid.settings import Destination, DestinationSettings, FolderDestinationSettings, ServeSettings
from deid.settlement import Batch, Settlement, settle
from deid.spool import Item, Spool, StorageUnavailable, storage_failure
from deid.storage_wait import StorageWait, WorkerHealth, WorkerSlot

if TYPE_CHECKING:
    from deid.sender import Pending

POLL_SECONDS = 0.05  # an idle worker looks for new items at least this often (deid.doorbell)
BATCH = 16  # items a worker settles with one sync at most (fewer when it runs out of work)


class StopFlag:
    """The node's "stop" to its worker processes, which a killed worker cannot wedge:
    ``multiprocessing.Event.set`` waits for every process asleep in ``wait``, also one that was
    killed there (the node then never exits). A shared byte, polled every ``POLL_SECONDS``."""

    def __init__(self, context: Any) -> None:
        self._flag = context.RawValue("b", 0)

    def set(self) -> None:
        self._flag.value = 1

    def is_set(self) -> bool:
        return bool(self._flag.value)

    def wait(self, timeout: float) -> bool:
        """Sleep up to ``timeout`` seconds, less when the flag is set; whether it is."""
        deadline = time.monotonic() + timeout
        while not self.is_set() and (left := deadline - time.monotonic()) > 0:
            time.sleep(min(left, POLL_SECONDS))
        return self.is_set()
DRAIN_SECONDS = 120.0  # SIGTERM: how long associations in progress may take to finish
LEASE_SECONDS = 3600.0
MAX_CRASHES = 3  # workers that may die on one object before it is quarantined
RESTART_SECONDS = 2.0


def _die_with_parent(parent: int) -> None:
    """Linux: this process gets SIGKILL when the node's main process dies (kill -9 included)."""
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass
    if os.getppid() != parent:  # the parent died before prctl took effect
        os._exit(1)


def _destination(setting: Destination) -> Any:
    """The forwarder's view of a configured destination."""
    from deid import forward

    if isinstance(setting, FolderDestinationSettings):  # an output folder
        from deid.folder_destination import folder_destination

        return folder_destination(setting)
    if not isinstance(setting, DestinationSettings):  # a STOW-RS destination (deid.stow)
        from deid.stow import stow_destination

        return stow_destination(setting)
    tls = None
    if setting.tls is not None:
        tls = forward.TlsSettings(cert=setting.tls.cert, key=setting.tls.key, ca=setting.tls.ca)
    return forward.Destination(
        setting.ae_title, setting.host, setting.port, called_by=setting.calling_ae_title, tls=tls
    )


@dataclasses.dataclass
class Flight:
    """A worker's object whose released bytes a sender has (:meth:`Worker._forwarding`, paused
    at a hand-over until the worker takes the answer)."""

    item: Item
    forwarding: Generator[None, None, Settlement]


class Worker:
    """One worker process's loop: claim -> de-identify -> forward -> record -> release.

    Forwarding overlaps the next object's de-identification: the released bytes are handed to
    the destination's sender (:meth:`deid.sender.SharedSender.submit`) and the worker claims and
    de-identifies its next item while the sender sends them; it then takes the answer and
    settles the object (:meth:`land`) before it hands the next one over.  One object at a time
    is in flight per worker (its :class:`Flight`); a worker that dies leaves it claimed, done
    again like the rest of its batch.

    It is the node's :class:`~deid.settlement.Ledger`: an outcome is recorded in this worker's
    audit trail, synced (fsync), then released to the spool.  It settles its items in a
    :class:`~deid.settlement.Batch`: each is recorded as it ends; when ``BATCH`` have, or when
    nothing more is due, one fsync makes their lines durable and one spool commit releases them.
    Until then they stay claimed by this worker (a worker that dies leaves them to be done again,
    counting the crash only against the item it was working on)."""

    def __init__(
        self,
        settings: ServeSettings,
        name: str,
        waiting: StorageWait | None = None,
        *,
        sender: Any = None,
        pipeline: Any = None,
        spool: Any = None,
        open_records: Callable[[], Any] | None = None,
        doorbell: Doorbell | None = None,
    ) -> None:
        """Its collaborators, each made from ``settings`` when not given: ``sender``
        (:class:`deid.sender.Sender`: this process's own associations by default), ``pipeline``
        (:class:`deid.pipeline.Pipeline`), ``spool`` (:class:`deid.spool.Spool`, or one with its
        interface) and ``open_records`` (makes this worker's audit trail, again after a refused
        write); ``doorbell``: what the receiver rings when it queues an object (deid.doorbell),
        which an idle worker waits on (without: it looks every ``POLL_SECONDS``)."""
        self.settings = settings
        self.name = name
        self.log = logs.get_logger("deid.serve")
        if pipeline is None or open_records is None:
            from deid.keys import load_key_file
            from deid.profile.loader import load_profile

            profile, key = load_profile(settings.profile), load_key_file(settings.key_file)
            if settings.deny_list is not None:
                from deid.profile.loader import with_deny_list

                profile = with_deny_list(profile, settings.deny_list)
            pipeline = pipeline or _make_pipeline(settings, profile, key)
            open_records = open_records or (lambda: _open_records(settings, profile, key, name))
        self.pipeline = pipeline
        self.open_records = open_records
        self.spool = spool if spool is not None else Spool(settings.spool)
        self.destinations = [d.name for d in settings.destinations]
        if sender is None:
            from deid.sender import LocalSender

            sender = LocalSender(
                {d.name: _destination(d) for d in settings.destinations},
                timeout=settings.forward_timeout,
            )
        self.sender = sender
        # a destination that just failed is not tried again at once
        self.down_until: dict[str, float] = {}
        try:
            self.records = open_records()
        except BaseException:
            self.spool.close()  # made again at the next try (a full disk: every few seconds)
            raise
        self._unsynced = False  # records written since the last flush
        self._records_failed = False  # a records write was refused: its file may end mid-line
        self.waiting = waiting or StorageWait(self.log, WorkerSlot(None))
        self.held: list[Item] = []  # refused storage took them over; not given back yet
        self.batch: Batch[Item] = Batch(self, BATCH, background=False)
        self.flight: Flight | None = None  # the object whose sends are under way
        self.doorbell = doorbell

    def run(self, stop: Any) -> None:
        """Work until ``stop`` is set; a refusal of the file system is waited out, never fatal."""
        try:
            while not stop.is_set():
                try:
                    worked = self.step()
                except Exception as exc:
                    failure = storage_failure(exc)
                    if failure is None:
                        raise  # a bug: the node restarts the worker and counts the crash
                    stop.wait(self.waiting.refused(failure))
                    continue
                self.waiting.succeeded()
                if not worked:  # until an object is queued, a retry is due, or a stop
                    (self.doorbell or stop).wait(POLL_SECONDS)
        finally:
            self._close()

    def step(self) -> bool:
        """Give back the items held since a refused write, then claim and handle the next one;
        when nothing is due, settle the batch (False).  Raises what the file system refused, after
        giving back the claimed items not yet settled (done again later, untouched by this try)."""
        while self.held:
            self.spool.release(self.held[0])
            self.held.pop(0)
        item: Item | None = None
        try:
            item = self.spool.claim(self.name, lease=LEASE_SECONDS)
            if item is None:
                self.land()  # idle: the object in flight answered and settled,
                self.settle_pending()  # then one sync and one commit for what is pending
                return False
            if self._records_failed:
                self._reopen_records()
            self.handle(item)
        except Exception as exc:
            if storage_failure(exc) is not None:
                self._give_back([*self.batch.drop(), *([item] if item is not None else []),
                                 *self._abandon()])
            raise
        return True

    def land(self) -> None:
        """Take the answers of the object in flight (from every destination it was handed to)
        and settle it."""
        flight = self.flight
        if flight is None:
            return
        try:
            try:
                while True:
                    next(flight.forwarding)
            except StopIteration as done:
                settlement: Settlement = done.value
            self.settle(flight.item, settlement)
        except Exception as exc:
            if storage_failure(exc) is None:  # a bug: the object stays claimed (the node counts
                self.flight = None  # the crash against it), never landed again at the stop
            raise  # (a refused write: given back with the batch, see step)
        self.flight = None

    def _take_off(self, item: Item, forwarding: Generator[None, None, Settlement]) -> None:
        """Start forwarding ``item``: up to its first hand-over, then it is in flight (settled at
        once when nothing was handed over: every destination is down)."""
        try:
            next(forwarding)
        except StopIteration as done:
            self.settle(item, done.value)
            return
        self.flight = Flight(item, forwarding)

    def _abandon(self) -> list[Item]:
        """Forget the object in flight (given back with the batch when storage failed; a late
        answer to its send is dropped by the sender's ticket); returns it."""
        flight, self.flight = self.flight, None
        if flight is None:
            return []
        flight.forwarding.close()
        return [flight.item]

    def settle_pending(self) -> None:
        """Make the pending items' records durable (one sync), then release them (one commit)."""
        self.batch.close()
        self.sync()  # a line recorded outside the batch, if ever: durable all the same

    def _give_back(self, items: list[Item]) -> None:
        """Items whose settlement the file system refused: claimable again as soon as the spool
        takes their release (an item already settled is left as it is)."""
        for item in {item.id: item for item in items}.values():
            if self.held:
                self.held.append(item)
                continue
            try:
                self.spool.release(item)
            except StorageUnavailable:
                self.held.append(item)

    def _close(self) -> None:
        """At the stop: what the disk still refuses is left for the next start (its recovery
        releases this worker's claims; lines already written stay)."""
        try:
            self.land()  # the object in flight is answered before the senders go
        except Exception as exc:
            if storage_failure(exc) is None:
                raise
            self._give_back([*self.batch.drop(), *self._abandon()])
        self.sender.close()
        try:
            self.settle_pending()
        except Exception as exc:
            if storage_failure(exc) is None:
                raise
            self._give_back(self.batch.drop())
        for action in (self.records.flush, self.records.close):
            try:
                action()
            except OSError:
                pass
        for item in self.held:
            try:
                self.spool.release(item)
            except StorageUnavailable:
                break
        self.spool.close()

    def handle(self, item: Item) -> None:
        """Take one claimed item to its settlement (forwarded, quarantined, or a retry)."""
        if item.crashes >= MAX_CRASHES:
            error = ObjectError(
                "worker-crashed", f"a worker process died {item.crashes} times on this object; "
                "report it to the deid maintainers with the quarantined file", stage="rules")
            self.settle(item, self.pipeline.quarantine(self.spool.read(item), error))
            return
        pending = [name for name in self.destinations if name not in item.sent]
        now = time.monotonic()
        if item.attempts and all(self.down_until.get(name, 0.0) > now for name in pending):
            # nothing to try yet: no work spent on it
            self.settle(item, Retry("destination-unavailable"))
            return
        try:
            data = self.spool.read(item)
        except OSError:
            self.settle(item, Retry("spool-unreadable"))
            return
        outcome = self.pipeline.deidentify_bytes(data)  # deterministic: a retry, the same bytes
        try:
            self.land()  # the previous object, sent while this one was de-identified
        except Exception as exc:
            if storage_failure(exc) is None:  # a bug settling the previous object: this one goes
                self.spool.release(item)  # back untouched, so the node counts the crash against
            raise  # that one, the one this worker then holds (the spool's release_worker)
        match outcome:
            case Written(data=bytes() as released):
                self._claim_durable()
                if item.attempts == 0:
                    self.record(item, outcome)
                self._take_off(item, self._forwarding(item, pending, outcome.released, released))
            case _:
                self.settle(item, outcome)

    def _claim_durable(self) -> None:
        """Make the released UID claimed for the object about to be sent durable (one fsync of
        the index's write-ahead log: _make_pipeline), before any destination has it."""
        if (index := getattr(self.pipeline, "released", None)) is not None:
            index.sync()  # (an OSError: the records' disk, waited out as any refusal of it)

    def settle(self, item: Item, outcome: Outcome) -> None:
        """The one way an item ends: recorded now, its record made durable and the spool told with
        its batch (deid.settlement.Batch)."""
        self.batch.settle(item, outcome)

    # -- the node's Ledger (deid.settlement) ------------------------------------------------
    def record(self, item: Item, outcome: Outcome) -> None:
        """The outcome's audit line.  An item's settlement (forwarded everywhere, or a retry)
        names no destination and has no line of its own: each destination's was recorded as it
        answered, and a retry without a send has nothing to record."""
        match outcome:
            case Forwarded(destination="") | Retry(destination=""):
                return
        try:
            self.records.record(outcome)
        except OSError:
            self._records_failed = True
            raise
        self._unsynced = True

    def sync(self) -> None:
        """Make the recorded lines durable (audit trail and re-identification map, fsync'd), and the
        UIDs claimed in the released index, before the spool lets go of the original: an object
        is never released without its record, even across a power cut."""
        if self._unsynced:
            try:
                self.records.flush()
                if (index := getattr(self.pipeline, "released", None)) is not None:
                    index.sync()  # the UIDs claimed by this batch's items
            except OSError:
                self._records_failed = True
                raise
            self._unsynced = False

    def releasing(self) -> Any:
        """A batch's releases share one spool commit (deid.settlement.commit)."""
        return self.spool.together()

    def release(self, item: Item, outcome: Outcome) -> None:
        """Tell the spool: the original goes (forwarded everywhere, quarantined), one destination
        has it (a retry will not send it there again), or it stays for a later attempt."""
        processed = item.attempts == 0  # de-identified in this attempt, first time: counted
        match outcome:
            case Forwarded(destination=""):
                self.spool.ack(item, processed=processed and outcome.released is not None)
            case Forwarded(destination=name):
                self.spool.mark_sent(item, name)
            case Retry(reason=reason):
                self.spool.retry(item, reason, first_delay=self.settings.retry.first_delay,
                                 max_delay=self.settings.retry.max_delay,
                                 processed=processed and outcome.released is not None)
            case Quarantined(code=code):
                self.spool.quarantine(item, code)
                log = self.log.error if code == "worker-crashed" else self.log.warning
                log("quarantined", code=code, stage=outcome.stage or None,
                    path=outcome.path or None, quarantine=outcome.entry)
            case _:
                raise TypeError(f"a node item does not end {type(outcome).__name__}")

    def _forwarding(self, item: Item, pending: list[str], facts: Released,
                    data: bytes) -> Generator[None, None, Settlement]:
        """Send the released bytes to each pending destination: forwarded when all have them, a
        retry when one may take them later, quarantined when one refused them for good.  The
        bytes go to every destination's sender at once; it pauses after the hand-over (the worker
        de-identifies its next object meanwhile), then takes the answers in the destinations'
        order.  With several destinations each delivery is settled as it comes (a retry skips
        those; a refusal, too, comes after the deliveries of the others are recorded).  Returns
        the item's settlement."""
        waiting: str | None = None
        handed: list[tuple[str, Pending]] = []
        for name in pending:
            if self.down_until.get(name, 0.0) > time.monotonic():
                waiting = "destination-unavailable"
                continue
            handed.append((name, self.sender.submit(name, data)))
        if handed:
            yield
        refused: Quarantined | None = None
        for name, sending in handed:
            result = self.sender.result(sending)
            if result.outcome == Delivery.DONE:
                self.down_until.pop(name, None)
                delivered = Forwarded(facts, name)
                if len(self.destinations) > 1:  # the spool marks it sent to this destination
                    settle(self, item, delivered)  # now: a later retry does not send it again
                    item = dataclasses.replace(item, sent=tuple(sorted({*item.sent, name})))
                else:
                    self.record(item, delivered)
            elif result.outcome == Delivery.RETRY:
                waiting = "destination-unavailable" if result.status is None else "destination-busy"
                self.down_until[name] = time.monotonic() + min(5.0, self.settings.retry.first_delay)
                self.log.warning(
                    "forward deferred",
                    code=waiting,
                    status=result.status,
                    attempt=item.attempts + 1,
                )
                self.record(item, Retry(waiting, name, facts))
            elif refused is None:  # Delivery.FAILED
                error = ObjectError(
                    "forward-rejected", f"destination {name} refused the object permanently "
                    f"({result.detail}); check the destination's configuration", stage="forward")
                refused = self.pipeline.quarantine(self.spool.read(item), error, destination=name)
        if refused is not None:
            return refused
        return Retry(waiting, released=facts) if waiting is not None else Forwarded(facts)

    # -- records (the audit trail) -------------------------------------------------------
    def _reopen_records(self) -> None:
        """After a refused records write: go on in new files (the old ones may end with a cut
        line, which their readers leave out; appending after it would spoil the next line)."""
        try:
            self.records.close()
        except OSError:
            pass
        self.records = self.open_records()
        self._records_failed = False


def _make_pipeline(settings: ServeSettings, profile: Any, key: Any) -> Any:
    """A worker's pipeline: the node's profile, key and lookup; quarantine and released index in
    the data folder."""
    from deid.engine.identity import load_lookup
    from deid.pipeline import Pipeline
    from deid.released import DB_NAME, ReleasedIndex

    return Pipeline(
        profile,
        key,
        out=settings.outgoing,  # nothing is written there: the released bytes are sent
        quarantine=settings.quarantine,
        lookup=load_lookup(settings.lookup) if settings.lookup else None,
        durable=False,
        debug=settings.records if settings.debug else None,
        # one UID, one content, node-wide; each claim durable before its object is sent (a claim
        # lost to a power cut after the send could let other content take the UID at the
        # destination): committed without a sync, then synced by the worker before the hand-over
        # (Worker.handle), so no worker's claim waits for another's sync (SQLite holds its write
        # lock through a synced commit: the other claims slept in its busy handler, 1 ms and up)
        released=ReleasedIndex(settings.records / DB_NAME, durable=False),
    )


def _open_records(settings: ServeSettings, profile: Any, key: Any, name: str) -> Any:
    """This worker's audit trail (its own file in the records folder)."""
    import uuid

    from deid.audit.trail import AuditTrail

    return AuditTrail(
        make_private_dir(settings.records),
        key=key,
        profile=profile,
        run_id=f"{uuid.uuid4().hex[:12]}",
        source="serve",
    )


def _worker_main(
    settings: ServeSettings,
    name: str,
    stop: Any,
    parent: int,
    slot: WorkerSlot,
    index: int,
    lines: dict[str, Any],
    doorbell: Doorbell | None = None,
) -> None:
    from deid.sender import name_process

    _die_with_parent(parent)
    name_process(b"deid-worker")  # /proc/PID/comm, as ps and top show it
    if settings.worker_nice:  # below the receiver: on a busy node the storing peer is answered
        try:  # first; de-identification takes the CPU the receiver leaves
            os.nice(settings.worker_nice)
        except OSError:
            pass  # (not allowed here: the workers run at the node's own priority)
    signal.signal(
        signal.SIGTERM, signal.SIG_IGN
    )  # the main process drains and then tells us to stop
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    logs.configure()
    waiting = StorageWait(logs.get_logger("deid.serve"), slot)
    from deid.sender import SharedSender

    # an answer may wait behind every other worker's object, each given the forward timeout twice
    wait = settings.forward_timeout * 2 * (settings.workers + 1) + 5
    while not stop.is_set():  # a worker (re)started on a full disk waits, as a running one does
        try:
            sender = SharedSender(lines, index, name, wait=wait, spill=settings.outgoing)
            worker = Worker(settings, name, waiting, sender=sender, doorbell=doorbell)
        except Exception as exc:
            failure = storage_failure(exc)
            if failure is None:
                raise
            stop.wait(waiting.refused(failure))
            continue
        worker.run(stop)


# -- the main process ---------------------------------------------------------------------------


def prepare_data_folder(settings: ServeSettings) -> Any:
    """Create the data folder (owner-only) and lock it: one node per data folder."""
    make_private_dir(settings.data)
    for folder in (settings.quarantine, settings.records, settings.outgoing):
        make_private_dir(folder)
    lock = open(settings.data / "serve.lock", "w")
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        lock.close()
        raise UsageError(f"{settings.data}: another deid serve is using this data folder") from None
    return lock


def clean_outgoing(settings: ServeSettings) -> None:
    """At start-up: drop the workers' scratch copies (each attempt de-identifies again)."""
    for entry in os.scandir(settings.outgoing):
        shutil.rmtree(entry.path, ignore_errors=True) if entry.is_dir() else os.unlink(entry.path)


class Node:
    """The running node (main process): the spool, the receiver, the workers, the status server."""

    def __init__(self, settings: ServeSettings) -> None:
        self.settings = settings
        self.log = logs.get_logger("deid.serve")
        self.stopping = False
        self.context = multiprocessing.get_context("spawn")
        self.stop_workers = StopFlag(self.context)
        self.workers: dict[int, Any] = {}
        self.senders: dict[str, Any] = {}  # destination name -> its sender process (deid.sender)
        self.lines: dict[str, Any] = {}
        self.worker_health = WorkerHealth(self.context, settings.workers)
        from deid.metrics import SendLatency

        # each send's time, per destination and outcome, observed by the senders (/metrics)
        self.send_latency = SendLatency(self.context, [d.name for d in settings.destinations])
        self.serial = 0
        self.receiver: Any = None
        self.status: Any = None
        self.spool: Spool | None = None
        self.doorbell = Doorbell(self.context)  # rung per object queued: idle workers wake

    def check(self) -> None:
        """Fail at start (exit 2) on a profile, key or lookup that cannot be loaded."""
        from deid.engine.identity import load_lookup
        from deid.keys import load_key_file
        from deid.profile.loader import load_profile

        profile = load_profile(self.settings.profile)
        if self.settings.deny_list is not None:
            from deid.profile.loader import with_deny_list

            with_deny_list(profile, self.settings.deny_list)
        load_key_file(self.settings.key_file)
        if self.settings.lookup:
            load_lookup(self.settings.lookup)
        import deid.forward  # noqa: F401  (the forwarder must be importable before we accept anything)

    def run(self, *, on_ready: Callable[[int], None] | None = None) -> int:
        from deid.intake.receiver import Receiver

        self.check()
        lock = prepare_data_folder(self.settings)
        try:
            spool = self.spool = Spool(
                self.settings.spool, min_free_bytes=self.settings.min_free_mb * 1024 * 1024
            )
            recovered = spool.recover()
        except StorageUnavailable as exc:
            lock.close()
            raise UsageError(
                f"{self.settings.data}: cannot start, the data folder refuses writes ({exc.kind}); "
                "free space on its disk (or make it writable) and start again"
            ) from None
        clean_outgoing(self.settings)
        if any(recovered.values()):
            self.log.info("spool recovered", count=sum(recovered.values()))
        self.receiver = Receiver(self.settings, spool, ring=self.doorbell.ring)
        try:
            port = self.receiver.start()
        except OSError as exc:
            spool.close()
            lock.close()
            raise UsageError(
                f"port: cannot listen on {self.settings.host}:{self.settings.port} "
                f"({exc.strerror or exc.__class__.__name__})"
            ) from None
        from deid.sender import make_lines

        self.lines = make_lines(
            self.context, [d.name for d in self.settings.destinations], self.settings.workers
        )
        for destination in self.settings.destinations:
            self._start_sender(destination)
        for index in range(self.settings.workers):
            self._start_worker(index)
        if self.settings.status_port:
            from deid.status import start_status_server

            self.status = start_status_server(self.settings, spool, self)
        signal.signal(signal.SIGTERM, self._on_signal)
        signal.signal(signal.SIGINT, self._on_signal)
        self.log.info(
            "serving", aet=self.settings.ae_title, port=port, workers=self.settings.workers
        )
        if on_ready is not None:
            on_ready(port)
        try:
            while not self.stopping:
                time.sleep(0.2)
                self._watch_workers()
                self._watch_senders()
                spool.tidy()  # free slots (finished originals) deleted once unused a while
        finally:
            self._drain()
            spool.close()
            lock.close()
        return 0

    def healthy(self) -> bool:
        return not self.problems()

    def problems(self) -> list[str]:
        """Why the node is not healthy, in words an operator acts on (empty: it is)."""
        problems = ["draining"] if self.stopping else []
        total = self.settings.workers
        down = sum(not p.is_alive() for p in self.workers.values())
        if down:
            problems.append(f"{down} of {total} workers not running")
        storage = self.spool.storage().problem if self.spool is not None else None
        if storage:
            problems.append(storage)
        waiting = self.worker_health.waiting()
        if waiting:
            problems.append(
                f"{len(waiting)} of {total} workers waiting for the data folder to take writes "
                f"({', '.join(sorted(set(waiting)))})"
            )
        return problems

    def figures(self) -> dict[str, Any]:
        """The storage figures of /healthz and /metrics (besides the spool's own)."""
        figures: dict[str, Any] = self.spool.storage().as_stats() if self.spool else {}
        waiting = self.worker_health.waiting()
        figures["workers_waiting"] = len(waiting)
        figures["storage_refusals"] = self.worker_health.refusals()
        if waiting and figures.get("storage") == "ok":
            figures["storage_unavailable"] = 1
            figures["storage"] = f"writes refused ({', '.join(sorted(set(waiting)))})"
        return figures

    def _on_signal(self, _signum: int, _frame: Any) -> None:
        self.stopping = True

    def _start_worker(self, index: int) -> None:
        self.serial += 1
        name = f"w{index}-{self.serial}"
        process = self.context.Process(
            target=_worker_main,
            name=f"deid-worker-{index}",
            args=(
                self.settings,
                name,
                self.stop_workers,
                os.getpid(),
                self.worker_health.slot(index),
                index,
                self.lines,
                self.doorbell,
            ),
            daemon=True,
        )
        self.worker_health.slot(index).clear()
        process.start()
        process.deid_name = name  # type: ignore[attr-defined]
        process.deid_started = time.monotonic()  # type: ignore[attr-defined]
        self.workers[index] = process

    def _start_sender(self, destination: Destination) -> None:
        """The process that owns the association to ``destination`` (deid.sender)."""
        from deid.sender import sender_main

        process = self.context.Process(
            target=sender_main,
            name=f"deid-sender-{destination.name}",
            args=(
                _destination(destination),
                self.lines[destination.name],
                destination.max_associations,  # at once; 1 (the default) every peer takes
                self.settings.forward_timeout,
                os.getpid(),
                self.send_latency,
            ),
            daemon=True,
        )
        process.start()
        process.deid_setting = destination  # type: ignore[attr-defined]
        process.deid_started = time.monotonic()  # type: ignore[attr-defined]
        self.senders[destination.name] = process

    def _watch_senders(self) -> None:
        """A sender that died is replaced (what it was sending is retried by its worker)."""
        for process in list(self.senders.values()):
            if process.is_alive() or self.stop_workers.is_set():
                continue
            if time.monotonic() - process.deid_started >= RESTART_SECONDS:
                self.log.error("sender died; restarting it", code="worker-died",
                               status=process.exitcode)
                self._start_sender(process.deid_setting)

    def _stop_senders(self) -> None:
        for name, process in self.senders.items():
            if process.is_alive():  # one None per sending thread
                self.lines[name].stop(process.deid_setting.max_associations)
        for process in self.senders.values():
            process.join(self.settings.forward_timeout + 10)
            if process.is_alive():
                process.kill()
                process.join()

    def _watch_workers(self) -> None:
        """A worker that died is replaced; what it held goes back to the queue.  One that dies
        at once is replaced no faster than every RESTART_SECONDS (no fork storm)."""
        assert self.spool is not None
        for index, process in list(self.workers.items()):
            if process.is_alive() or self.stop_workers.is_set():
                continue
            if time.monotonic() - process.deid_started >= RESTART_SECONDS:
                try:
                    released = self.spool.release_worker(process.deid_name)
                except StorageUnavailable:
                    continue  # its crash is counted (and it restarts) once the spool takes writes
                self.log.error(
                    "worker died; restarting it",
                    code="worker-died",
                    status=process.exitcode,
                    count=released,
                )
                self._start_worker(index)

    def _drain(self) -> None:
        """Stop accepting, let associations in progress finish, let workers finish their item."""
        self.log.info("draining")
        if self.receiver is not None:
            self.receiver.stop_accepting()
            self.receiver.wait_idle(DRAIN_SECONDS)
            self.receiver.abort_all()  # what is left: connections that never became associations
        self.stop_workers.set()
        for process in self.workers.values():
            process.join(self.settings.forward_timeout * (len(self.settings.destinations) + 1) + 30)
            if process.is_alive():
                process.kill()
                process.join()
        self._stop_senders()
        if self.status is not None:
            self.status.shutdown()
        self.log.info("stopped")


def serve(settings: ServeSettings) -> int:
    """Run the node until SIGTERM/SIGINT; returns the exit code (0 after a clean drain)."""
    return Node(settings).run()
