"""Which key and profile an output is released with (the records' release.json): a run with
another key is refused, one with another profile too unless it releases every source again
(``--reprocess``), and then what the earlier profile released and this one does not is removed."""

from __future__ import annotations

import json
from pathlib import Path

from deid.errors import UsageError
from deid.io.writer import fsync_dir, write_bytes_atomic
from deid.keys import SecretKey
from deid.profile.model import Profile
from deid.released import ReleasedIndex
from deid.run.journal import JOURNAL, Journal, made_with_another_profile
from deid.run.paths import RunPaths, inside

RELEASE = "release.json"  # the key fingerprint and profile the output is released with
_NEW_OUTPUT = ("release into a new output folder (--out NEW; its quarantine and records go "
               "beside it)")


def check_release(paths: RunPaths, profile: Profile, key: SecretKey, *, reprocess: bool,
                  from_quarantine: bool) -> None:
    """Refuse (exit 2) a run whose key, or profile (unless ``reprocess``), differs from the ones the
    output was released with (the records' release.json); then record this run's."""
    record = paths.records / RELEASE
    journal = paths.records / JOURNAL
    this = {"key_fingerprint": key.fingerprint, "profile": profile.name,
            "profile_version": profile.version, "profile_sha256": profile.sha256,
            "deny_list_sha256": profile.deny_list_sha256}
    made: dict = {}
    # (nothing done: nothing to keep)
    if record.is_file() and journal.is_file() and journal.stat().st_size:
        try:
            made = json.loads(record.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            raise UsageError(f"{record} cannot be read, so nothing says which key and profile "
                             f"{paths.out} was released with; restore it from a backup, or release "
                             "into a new output folder (--out NEW)") from None
    if made and made.get("key_fingerprint") != key.fingerprint:
        raise UsageError(
            f"{paths.out} was released with another key (fingerprint "
            f"{made.get('key_fingerprint')}; this key's is {key.fingerprint}): a second key would "
            "release the same patients again under other pseudonyms. Give the key it was released "
            f"with, or {_NEW_OUTPUT}")
    if made and ((made.get("profile_sha256"), made.get("deny_list_sha256", ""))
                 != (profile.sha256, profile.deny_list_sha256)):
        _refuse_another_profile(made, paths, profile, reprocess=reprocess,
                                from_quarantine=from_quarantine)
    if made != this:
        write_bytes_atomic((json.dumps(this, indent=2) + "\n").encode(), record, mode=0o600)
        fsync_dir(paths.records)


def _refuse_another_profile(made: dict, paths: RunPaths, profile: Profile, *, reprocess: bool,
                            from_quarantine: bool) -> None:
    """Refuse a run with another profile or deny-list than ``made`` records, unless it releases
    every source again (``reprocess``, not with --from-quarantine)."""
    what = (f"{paths.out} was released with profile '{made.get('profile')}' "
            f"{made.get('profile_version')} (sha256 {str(made.get('profile_sha256'))[:12]}); this "
            f"profile '{profile.name}' {profile.version} (sha256 {profile.sha256[:12]}) differs")
    if made.get("profile_sha256") == profile.sha256:
        what = (f"{paths.out} was released with profile '{profile.name}' and another deny-list "
                f"(sha256 {str(made.get('deny_list_sha256'))[:12] or 'none'}; this run's is "
                f"{profile.deny_list_sha256[:12] or 'none'})")
    if from_quarantine:
        raise UsageError(
            f"{what}, and the output would mix the two. Release the whole input again with it: "
            f"deid run SRC --out {paths.out} --profile ... --reprocess (what is released leaves "
            f"the quarantine), or {_NEW_OUTPUT} with --from-quarantine {paths.quarantine}")
    if not reprocess:
        raise UsageError(
            f"{what}. Give --reprocess to release every source again with it (what it no longer "
            f"releases is removed from the output), or {_NEW_OUTPUT}")


def remove_stale(journal: Journal, out: Path, released: ReleasedIndex) -> set[str]:
    """Remove the outputs the journal says another profile released (``deid run --reprocess``
    releases their sources again with this one; check_release refused the run otherwise), and
    their claims in the released index; returns their paths."""
    entries = [e for e in journal.done.values() if e.get("status") == "written" and e.get("output")]
    old = [made_with_another_profile(e, journal.stamp) for e in entries]
    kept = {e["output"] for e, other in zip(entries, old) if not other}
    kept_uids = {e.get("sop_uid") for e, other in zip(entries, old) if not other}
    stale = {e["output"]: e.get("sop_uid") or "" for e, other in zip(entries, old)
             if other and e["output"] not in kept}
    for output in stale:
        path = out / output
        path.unlink(missing_ok=True)
        for folder in path.parents:  # and the folders it leaves empty
            if folder == out or not inside(folder, out) or any(folder.iterdir()):
                break
            folder.rmdir()
    forgotten = [uid for uid in stale.values() if uid and uid not in kept_uids]
    if forgotten:
        released.forget(forgotten)
    return set(stale)
