"""`deid run`: de-identify folders of files into an output tree, resumably and in parallel.

Finished objects are recorded in a journal in the records folder (keyed by an HMAC of the source
path, size and mtime: no source path is stored), so a second run skips them and a run killed
half-way completes on the next start with nothing lost or doubled.

One run at a time writes into an output folder (a lock in it, whatever the records folder); its
temp files are named by its run id.  A full or read-only output, quarantine or records folder stops
the run with a message saying what to do (:class:`FolderNotWritable`); the same command run again
then completes the job.

The records know the key (fingerprint) and profile (sha256) the output was released with
(``release.json``, and each journal entry): a run with another key is refused, one with another
profile too unless it re-releases every source (``reprocess``).  ``from_quarantine`` runs over the
originals in the quarantine instead of source folders: each one released leaves the quarantine.
Each run's summary is kept (``summaries/<run id>.json``; ``summary.json`` is the latest).

The modules, one job each: ``paths`` (the three folders), ``folders`` (their checks and locks),
``release`` (the key and profile of the output), ``journal`` (what is done), ``quarantine`` (its
entries as names, as an input, and leaving), ``workers`` (a process's pipeline), ``pool`` (the
forked worker processes, results in input order), ``attempt`` (the object the run's own process
is on, should it die of it), ``memory`` (how its processes hold memory), ``progress`` (the bar on
a terminal), ``loop`` (the run itself) and ``summary`` (what it did).
"""

from deid.run.folders import FolderNotWritable, check_paths
from deid.run.journal import JOURNAL, Journal, source_ref
from deid.run.loop import BATCH, run
from deid.run.paths import RunPaths
from deid.run.summary import SUMMARY, RunSummary

__all__ = ["BATCH", "JOURNAL", "SUMMARY", "FolderNotWritable", "Journal", "RunPaths", "RunSummary",
           "check_paths", "run", "source_ref"]
