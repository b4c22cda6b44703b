"""Command line: parses options and calls the library.  Exit codes: 0 ok, 1 bug, 2 usage, 3 not all
released (deid run: objects wait in the quarantine, or the input held no file)."""

from __future__ import annotations

import argparse
import atexit
import gc
import os
import sys
from pathlib import Path

from deid import __version__, allocator, logs
from deid.errors import UsageError

EXIT_OK, EXIT_BUG, EXIT_USAGE, EXIT_QUARANTINED = 0, 1, 2, 3
EXIT_FINDINGS = 4  # deid verify found something that must not be in a release


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="deid", description="DICOM de-identification pipeline")
    parser.add_argument("--version", action="version", version=f"deid-pacs {__version__}",
                        help="print the version (deid-pacs X.Y.Z) and exit")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND",
                                help="what to do (deid COMMAND --help: its arguments)")

    keygen = sub.add_parser("keygen", help="write a new secret key file (mode 0600; never overwrites)")
    keygen.add_argument("path", type=Path, metavar="PATH",
                        help="where to write the key, e.g. ~/deid.key (must not exist yet)")

    run = sub.add_parser("run", help="de-identify folders of DICOM files into an output folder")
    run.add_argument("sources", nargs="*", type=Path, metavar="SRC",
                     help="folders (or files) of DICOM objects and their side-cars; read, never changed")
    run.add_argument("--from-quarantine", type=Path, metavar="Q", help="release again the originals in "
                     "the quarantine Q instead of SRC, after correcting the cause (--lookup, the original in "
                     "Q, deid itself; a changed profile: --reprocess over SRC, or a new --out): each one "
                     "released leaves Q, each one still refused stays with its new reason")
    run.add_argument("--reprocess", action="store_true", help="the profile changed since OUT was released: "
                     "release every source again with it, and remove from OUT what it no longer releases "
                     "(without it, a changed profile is refused)")
    run.add_argument("--out", required=True, type=Path, help="output folder: only releasable objects")
    run.add_argument("--profile", default="vghtpe", help="built-in profile name or a YAML path (default: vghtpe)")
    run.add_argument("--key-file", type=Path, help="secret key (default: $DEID_KEY_FILE)")
    run.add_argument("--quarantine", type=Path, help="quarantine folder (default: OUT-quarantine beside OUT)")
    run.add_argument("--records", type=Path, help="run records folder (default: OUT-records beside OUT)")
    run.add_argument("--workers", type=int, default=1, help="worker processes (default 1)")
    run.add_argument("--cluster", metavar="ADDRESS", help="do the work on a Dask cluster: its scheduler "
                     "(tcp://HOST:8786) or local:N for N processes here; every worker must see the input, "
                     "--out and --quarantine at the same paths (needs deid-pacs[cluster])")
    run.add_argument("--lookup", type=Path, help="CSV of patient_id,case_number for Patient's Name")
    run.add_argument("--no-progress", action="store_true", help="no progress bar")
    run.add_argument("--debug", action="store_true", help="write the traceback of an internal error to "
                     "RECORDS/debug/<quarantine entry>.txt (mode 0600; it may hold values)")
    run.add_argument("--follow-links", action="store_true", help="follow links that leave the source "
                     "folders (default: refused and counted; links inside them are always followed)")
    run.add_argument("--max-object-size", metavar="SIZE", help="larger files are quarantined too-large "
                     "without being read, e.g. '4 GiB' (default: the profile's limits.max_object_size, 2 GiB)")
    run.add_argument("--deny-list", type=Path, help="text file of staff, institution and street names (one a "
                     "line, UTF-8) replaced in kept free text, added to the profile's free_text.deny_list")

    explain = sub.add_parser("explain", help="print the effective rule of every attribute, per SOP class")
    explain.add_argument("--profile", default="vghtpe",
                         help="built-in profile name or a YAML path (default: vghtpe)")
    explain.add_argument("--sop-class", default="CTImageStorage", help="keyword or UID (default CTImageStorage)")
    explain.add_argument("--only-profile", action="store_true", help="only rules the profile itself sets")
    explain.add_argument("--format", choices=("text", "markdown"), default="text",
                         help="text (default) or a markdown table")

    reid = sub.add_parser("reidentify", help="authorised: trace a released Patient ID or UID back to the "
                          "original (the question is recorded in the audit log)")
    reid.add_argument("records", type=Path, metavar="RECORDS_DIR", help="the run's or service's records folder")
    reid.add_argument("--key-file", type=Path, help="the secret key the records were written with (default: $DEID_KEY_FILE)")
    asked = reid.add_mutually_exclusive_group(required=True)
    asked.add_argument("--patient-id", metavar="RELEASED_ID", help="a released Patient ID")
    asked.add_argument("--uid", metavar="RELEASED_UID", help="a released Study, Series or SOP Instance UID")
    asked.add_argument("--export", type=Path, metavar="DIR", help="write DIR/uid_mapping.csv and "
                       "DIR/patid_mapping.csv (id_old,id_new; mode 0600) of the whole map, e.g. to score a "
                       "release with the MIDI-B validation script; never overwrites")
    reid.add_argument("--json", action="store_true", help="answer as JSON")
    _add_serve(sub)
    _add_pull(sub)
    report = sub.add_parser("report", help="write the HTML, JSON and CSV report of a records folder")
    report.add_argument("records", type=Path, metavar="RECORDS_DIR", help="the --records folder of runs")
    report.add_argument("--out", required=True, type=Path, help="folder for report.html, report.json, *.csv")
    report.add_argument("--key-file", type=Path, help="secret key: also flag kept text naming an identity seen "
                        "in another object of the same patient or study (from the encrypted map)")

    verify = sub.add_parser("verify", help="scan a de-identified tree for identity, UIDs, private tags, "
                            "bad values, missing method attributes and broken references")
    verify.add_argument("out", type=Path, metavar="OUT", help="the output folder of a run")
    verify.add_argument("--profile", help="the profile the tree was made with (default: for each file, the "
                        "shipped profile its De-identification Method names; vghtpe when none does)")
    verify.add_argument("--records", type=Path, help="records folder: search for the original values of its "
                        "re-identification map (needs the key)")
    verify.add_argument("--key-file", type=Path, help="secret key that opens the map (default: $DEID_KEY_FILE)")
    verify.add_argument("--case-pattern", help="regular expression a case number in Patient's Name matches "
                        "(default: the profile's number of digits; give it when a --lookup was used)")

    demo = sub.add_parser("demo", help="make a synthetic patient and de-identify it with the VGHTPE profile")
    demo.add_argument("folder", nargs="?", type=Path, default=Path("demo-output"), metavar="DIR",
                      help="where the demo writes its input, output, records and report "
                      "(default: demo-output)")
    for command in sub.choices.values():  # -q/-v before or after the command
        _add_verbosity(command)
    _add_verbosity(parser)
    return parser


def _add_verbosity(parser: argparse.ArgumentParser) -> None:
    """``-q/--quiet`` and ``-v/--verbose``: the log level of the command and its workers."""
    group = parser.add_mutually_exclusive_group()
    group.add_argument("-q", "--quiet", dest="log_level", action="store_const", const="warning",
                       default=argparse.SUPPRESS,
                       help="log only warnings and errors, and show no progress bar")
    group.add_argument("-v", "--verbose", dest="log_level", action="store_const", const="debug",
                       default=argparse.SUPPRESS, help="log debugging lines too")


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    # numpy's OpenBLAS (imported with pydicom) starts a thread per core at import, ~50 ms of CPU
    # of every start; deid does no linear algebra and parallelises by processes (a person's own
    # setting wins; the processes deid starts inherit it)
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    # at exit, what the command made is freed by the OS, not walked by the collector's last passes
    # (pydicom's dictionaries, the tables: ~50 ms of every command's end); atexit runs first
    atexit.register(gc.freeze)
    allocator.tune()
    level = getattr(args, "log_level", None)
    if level is not None:
        logs.set_level(level)
    elif os.environ.get(logs.ENV_LEVEL, "").strip().lower() not in ("", *logs.LEVELS):
        print(f"deid {args.command}: {logs.ENV_LEVEL} is one of {', '.join(logs.LEVELS)}",
              file=sys.stderr)
        return EXIT_USAGE
    logs.configure()
    try:
        return _dispatch(args)
    except UsageError as exc:
        print(f"deid {args.command}: {exc}", file=sys.stderr)
        return EXIT_USAGE


def _dispatch(args: argparse.Namespace) -> int:
    if args.command == "keygen":
        from deid.keys import generate_key_file

        generate_key_file(args.path)
        print(f"deid keygen: new key written to {args.path} (mode 0600); keep it secret and backed up")
        return EXIT_OK
    if args.command == "explain":
        from deid.explain import explain, render
        from deid.profile.loader import load_profile

        profile = load_profile(args.profile)
        print(render(explain(profile, args.sop_class, only_profile=args.only_profile), profile,
                     args.sop_class, args.format), end="")
        return EXIT_OK
    if args.command == "run":
        return _run(args)
    if args.command == "reidentify":
        return _reidentify(args)
    if args.command == "serve":
        return _serve(args)
    if args.command == "status":
        return _status(args)
    if args.command == "pull":
        return _pull(args)
    if args.command == "report":
        from deid.audit.report import write_report

        key = None
        if args.key_file is not None:
            from deid.keys import load_key_file

            key = load_key_file(args.key_file)
        html = write_report(args.records, args.out, key=key)
        print(f"deid report: {html} (and report.json, *.csv in {args.out})")
        return EXIT_OK
    if args.command == "verify":
        return _verify(args)
    if args.command == "demo":
        from deid.demo import run_demo

        return run_demo(args.folder)
    raise UsageError(f"unknown command {args.command}")


def _run(args: argparse.Namespace) -> int:
    if args.cluster is None:  # before pydicom is imported: what a run here never uses, unloaded
        from deid.deferred_imports import defer

        defer()
    from deid.engine.identity import load_lookup
    from deid.keys import load_key_file
    from deid.profile.loader import load_profile
    from deid.profile.model import parse_size
    from deid.run import RunPaths, run

    if args.workers < 1:
        raise UsageError("--workers must be at least 1")
    if args.cluster is not None:
        from deid.cluster import check_address

        check_address(args.cluster)
        if args.workers != 1:
            raise UsageError("--workers is for a run on this machine: with --cluster the cluster's workers "
                             "do the work (local:N for N processes here)")
    if bool(args.sources) == bool(args.from_quarantine):
        raise UsageError("give the folders to release (SRC ...) or --from-quarantine Q, not both" if args.sources
                         else "give the folders to release (SRC ...), or --from-quarantine Q to release a "
                         "quarantine again")
    if args.from_quarantine and args.reprocess:
        raise UsageError("--reprocess releases every source again: give the SRC folders (what is released "
                         "leaves the quarantine), not --from-quarantine")
    quarantine = args.quarantine
    if args.from_quarantine:
        if quarantine is not None and quarantine.resolve() != args.from_quarantine.resolve():
            raise UsageError("--from-quarantine Q keeps what is still refused in Q: leave out --quarantine")
        quarantine = args.from_quarantine
    max_object_bytes = None
    if args.max_object_size is not None:
        try:
            max_object_bytes = parse_size(args.max_object_size)
        except ValueError as exc:
            raise UsageError(f"--max-object-size: {exc}") from None
    profile = load_profile(args.profile)
    if args.deny_list is not None:
        from deid.profile.loader import with_deny_list

        profile = with_deny_list(profile, args.deny_list)
    key = load_key_file(args.key_file)
    lookup = load_lookup(args.lookup) if args.lookup else None
    paths = RunPaths.beside(args.out, quarantine, args.records)
    summary = run(args.sources, paths, profile, key, workers=args.workers, lookup=lookup,
                   progress=False if args.no_progress or _quiet(args) else None, follow_links=args.follow_links,
                   max_object_bytes=max_object_bytes, debug=args.debug, cluster=args.cluster,
                   from_quarantine=args.from_quarantine is not None, reprocess=args.reprocess)
    print(summary.line())
    return EXIT_OK if summary.complete else EXIT_QUARANTINED


def _quiet(args: argparse.Namespace) -> bool:
    return getattr(args, "log_level", None) == "warning"


def _reidentify(args: argparse.Namespace) -> int:
    from deid.audit.reidentify import as_json, export_mapping, reidentify, render, render_export
    from deid.keys import load_key_file

    if args.export is not None:
        sys.stdout.write(render_export(export_mapping(args.records, load_key_file(args.key_file), args.export)))
        return EXIT_OK
    answer = reidentify(args.records, load_key_file(args.key_file), patient_id=args.patient_id, uid=args.uid)
    sys.stdout.write(as_json(answer) if args.json else render(answer))
    return EXIT_OK if answer.found else EXIT_QUARANTINED


def _add_serve(sub: argparse._SubParsersAction) -> None:
    """`deid serve` (the forwarding node) and `deid status`; flags win over DEID_SERVE_*, YAML."""
    serve = sub.add_parser("serve", help="run the PACS forwarding node: receive by C-STORE, "
                           "de-identify, forward")
    add = serve.add_argument
    add("--config", type=Path, help="YAML settings file (see deploy/deid-serve.example.yaml)")
    add("--aet", dest="ae_title", help="the node's AE title (default DEID)")
    add("--host", help="address to listen on (default 0.0.0.0)")
    add("--port", type=int, help="port to listen on (default 11112)")
    add("--allow-aet", dest="allow", action="append", default=[], metavar="AET[@HOST]",
        help="a calling AE title allowed to send, optionally only from HOST (repeatable)")
    add("--forward", dest="destinations", action="append", default=[], metavar="DEST",
        help="a destination: AET@HOST:PORT (C-STORE) or a DICOMweb root https://host/dicom-web "
        "(STOW-RS, without credentials: give those in the YAML); repeatable")
    add("--max-associations", type=int, help="associations at once (default 10)")
    add("--profile", help="built-in profile name or a YAML path (default vghtpe)")
    add("--key-file", help="secret key (or DEID_SERVE_KEY_FILE / DEID_KEY_FILE)")
    add("--data", help="data folder: spool, quarantine, records (mode 0700)")
    add("--lookup", help="CSV of patient_id,case_number for Patient's Name")
    add("--deny-list", dest="deny_list", help="text file of names replaced in kept free text (one a line)")
    add("--workers", type=int, help="worker processes (default 2)")
    add("--status-port", type=int, help="HTTP /healthz and /metrics port (default 0: off)")
    add("--status-host", help="address of the status server (default 127.0.0.1)")
    add("--tls-cert", dest="tls.cert", help="TLS: the node's certificate (PEM)")
    add("--tls-key", dest="tls.key", help="TLS: the node's private key (PEM)")
    add("--tls-ca", dest="tls.ca", help="TLS: CA that signs the senders' certificates (PEM)")
    add("--debug", action="store_const", const=True, help="write the traceback of an internal error "
        "to DATA/records/debug/ (mode 0600; it may hold values)")

    status = sub.add_parser("status", help="counts and spool depth of a forwarding node's data")
    status.add_argument("--data", required=True, type=Path, help="the node's data folder")
    status.add_argument("--json", action="store_true", help="print JSON")


SERVE_FLAGS = ("ae_title", "host", "port", "allow", "destinations", "max_associations", "profile",
               "key_file", "data", "lookup", "deny_list", "workers", "status_port", "status_host", "tls.cert",
               "tls.key", "tls.ca", "debug")


def _serve(args: argparse.Namespace) -> int:
    from deid.service import serve
    from deid.settings import load_settings

    flags = {name: getattr(args, name) for name in SERVE_FLAGS}
    settings = load_settings(args.config, flags=flags)
    return serve(settings)


def _add_pull(sub: argparse._SubParsersAction) -> None:
    """`deid pull`: fetch approved studies from a PACS through the node's durable path."""
    pull = sub.add_parser("pull", help="fetch the studies of an approved list of accession numbers or "
                          "patient IDs from a PACS (C-FIND, C-MOVE or C-GET), de-identify, write or forward")
    add = pull.add_argument
    add("--from", dest="pacs", required=True, metavar="AET@HOST:PORT",
        help="the PACS to query and retrieve from")
    wanted = pull.add_mutually_exclusive_group(required=True)
    wanted.add_argument("--accessions", type=Path, metavar="FILE", help="the approved accession numbers: "
                        "a CSV with an accession_number column, or one value a line")
    wanted.add_argument("--patients", type=Path, metavar="FILE", help="the approved patient IDs: a CSV "
                        "with a patient_id column, or one value a line")
    add("--study-date", metavar="RANGE", help="only studies of these dates: YYYYMMDD, YYYYMMDD-YYYYMMDD, "
        "YYYYMMDD- or -YYYYMMDD")
    add("--modality", metavar="LIST", help="only series of these modalities, e.g. CT,PT,RTSTRUCT,SEG,SR "
        "(then retrieved series by series)")
    add("--aet", default="DEID", help="our AE title: the calling AE title towards the PACS and the C-MOVE "
        "destination (the PACS must know it with --host/--port; default DEID)")
    add("--host", default="0.0.0.0", help="address our receiver listens on for C-MOVE (default 0.0.0.0)")
    add("--port", type=int, default=11112, help="port our receiver listens on for C-MOVE (default 11112)")
    add("--get", action="store_true", help="retrieve by C-GET on our own association (for a PACS that "
        "cannot move to a node it does not know); no port is opened")
    add("--allow-aet", dest="allow", action="append", default=[], metavar="AET",
        help="another calling AE title the PACS stores from during C-MOVE (default: the one of --from; "
        "repeatable)")
    where = pull.add_mutually_exclusive_group(required=True)
    where.add_argument("--out", type=Path, help="output folder: the released objects, named as deid run "
                       "names them")
    where.add_argument("--forward", action="append", default=[], metavar="AET@HOST:PORT",
                       help="send the released objects to this node by C-STORE instead "
                       "(repeatable; a DICOMweb root URL works too, as with deid serve, but "
                       "credentials and a CA file go with --stow)")
    where.add_argument("--stow", metavar="URL", help="send the released objects by STOW-RS to this "
                       "DICOMweb root instead, e.g. https://archive.example.org/dicom-web (deid "
                       "POSTs to URL/studies)")
    stow = pull.add_argument_group("STOW-RS (with --stow)")
    stow.add_argument("--stow-ca", type=Path, metavar="FILE", help="CA bundle (PEM) that signs the "
                      "archive's certificate (default: the system's trust store)")
    stow.add_argument("--stow-cert", type=Path, metavar="FILE", help="our client certificate "
                      "(PEM), if the archive asks for one (with --stow-key)")
    stow.add_argument("--stow-key", type=Path, metavar="FILE", help="the private key (PEM) of "
                      "--stow-cert")
    login = stow.add_mutually_exclusive_group()
    login.add_argument("--stow-token-file", type=Path, metavar="FILE", help="file holding a bearer "
                       "token (one line; mode 0600); sent only over https or to this machine")
    login.add_argument("--stow-basic-auth-file", type=Path, metavar="FILE", help="file holding "
                       "user:password for basic auth (one line; mode 0600); sent only over https "
                       "or to this machine")
    add("--data", type=Path, help="data folder: spool, quarantine, records (the pull journal) and the "
        "pull report (default: OUT-pull beside OUT, or ./deid-pull with --forward or --stow)")
    add("--profile", default="vghtpe", help="built-in profile name or a YAML path (default vghtpe)")
    add("--key-file", type=Path, help="secret key (default: $DEID_KEY_FILE)")
    add("--lookup", type=Path, help="CSV of patient_id,case_number for Patient's Name")
    add("--deny-list", type=Path, help="text file of names replaced in kept free text (one a line)")
    add("--workers", type=int, default=1, help="worker threads de-identifying what arrives (default 1)")
    add("--wait", type=float, default=120.0, metavar="SECONDS", help="at the end, how long to wait for "
        "objects a --forward or --stow destination has not taken yet (they stay in the spool for "
        "the next pull; default 120)")


def _pull(args: argparse.Namespace) -> int:
    from deid.pull.query import check_date_range
    from deid.pull.requests import ACCESSION, PATIENT
    from deid.pull.run import PullOptions, check_modalities, pull
    from deid.settings import parse_caller, parse_destination

    base = Path.cwd()
    key_file = args.key_file or os.environ.get("DEID_KEY_FILE")
    if not key_file:
        raise UsageError("no key: pass --key-file PATH or set DEID_KEY_FILE (make one with: deid keygen PATH)")
    if args.workers < 1:
        raise UsageError("--workers must be at least 1")
    dates = None
    if args.study_date:
        try:
            dates = check_date_range(args.study_date)
        except ValueError as exc:
            raise UsageError(f"--study-date: {exc}") from None
    out = args.out.resolve() if args.out is not None else None
    data = args.data or (out.parent / f"{out.name}-pull" if out is not None else Path("deid-pull"))
    options = PullOptions(
        pacs=parse_destination("--from", args.pacs, base),
        requests=args.accessions or args.patients,
        kind=ACCESSION if args.accessions else PATIENT,
        data=data.resolve(), key_file=Path(key_file).expanduser().resolve(), out=out,
        forward=(*(parse_destination("--forward", text, base) for text in args.forward),
                 *_stow_destination(args, base)),
        dates=dates, modalities=check_modalities(args.modality) if args.modality else (),
        aet=args.aet, host=args.host, port=args.port, get=args.get, profile=args.profile,
        lookup=args.lookup, deny_list=args.deny_list, workers=args.workers, wait=max(0.0, args.wait),
        move_callers=tuple(parse_caller("--allow-aet", title).ae_title for title in args.allow),
    )
    import signal

    def _stop(_signum: int, _frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, _stop)  # as Ctrl-C: the node in the pull stops cleanly
    try:
        summary = pull(options)
    except KeyboardInterrupt:
        print("deid pull: interrupted; run the same command again to fetch what is missing",
              file=sys.stderr)
        return 130
    for result in summary.results:
        print(result.line())
    print(summary.line())
    print(f"deid pull: report in {options.data / 'pull-report.json'} (and pull-report.csv)")
    return EXIT_OK if summary.complete else EXIT_QUARANTINED


#: the settings key of a STOW-RS destination (deid.settings.parse_stow) -> the pull flag that
#: gives it, longest first: parse_stow's messages name the key, the user typed the flag
_STOW_FLAGS = {"--stow.basic_auth_file": "--stow-basic-auth-file",
               "--stow.token_file": "--stow-token-file", "--stow.tls.cert": "--stow-cert",
               "--stow.tls.key": "--stow-key", "--stow.tls.ca": "--stow-ca",
               "--stow.tls": "--stow-ca/--stow-cert/--stow-key", "--stow.stow": "--stow"}


def _stow_destination(args: argparse.Namespace, base: Path) -> tuple:
    """``--stow`` and its files as the node's STOW-RS destination (checked as a YAML ``stow:``
    destination is); none without ``--stow``."""
    from deid.settings import parse_stow

    files = {"--stow-ca": args.stow_ca, "--stow-cert": args.stow_cert, "--stow-key": args.stow_key,
             "--stow-token-file": args.stow_token_file,
             "--stow-basic-auth-file": args.stow_basic_auth_file}
    if args.stow is None:
        given = [flag for flag, value in files.items() if value is not None]
        if given:
            raise UsageError(f"{given[0]}: goes with --stow URL")
        return ()
    tls = {"ca": args.stow_ca, "cert": args.stow_cert, "key": args.stow_key}
    setting = {"stow": args.stow, "tls": {k: str(v) for k, v in tls.items() if v is not None},
               "token_file": args.stow_token_file and str(args.stow_token_file),
               "basic_auth_file": args.stow_basic_auth_file and str(args.stow_basic_auth_file)}
    try:
        return (parse_stow("--stow", setting, base),)
    except UsageError as exc:
        message = str(exc)
        for key, flag in _STOW_FLAGS.items():
            if message.startswith(key):
                message = flag + message[len(key):]
                break
        message = message.replace("token_file or basic_auth_file",
                                  "--stow-token-file or --stow-basic-auth-file")
        raise UsageError(message) from None


def _status(args: argparse.Namespace) -> int:
    import json

    from deid.spool import read_stats
    from deid.status import format_status

    try:
        stats = read_stats(args.data)
    except FileNotFoundError:
        raise UsageError(f"{args.data}: no spool here (not the --data of a deid serve?)") from None
    if args.json:
        print(json.dumps(stats, sort_keys=True))
    else:
        print(format_status(stats), end="")
    return EXIT_OK


def _verify(args: argparse.Namespace) -> int:
    import re

    from deid.audit.verify import CODES, load_map, verify
    from deid.profile.loader import load_profile

    if not args.out.is_dir():
        raise UsageError(f"{args.out}: no such output folder")
    if args.case_pattern:
        try:
            re.compile(args.case_pattern)
        except re.error:
            raise UsageError("--case-pattern is not a valid regular expression") from None
    profile = load_profile(args.profile) if args.profile else None
    originals = tokens = None
    if args.records is not None:
        from deid.keys import load_key_file

        originals, tokens = load_map(args.records, load_key_file(args.key_file))
    elif args.key_file is not None:
        raise UsageError("--key-file is used with --records (the records hold the re-identification map)")
    result = verify(args.out, profile, originals=originals, case_pattern=args.case_pattern, tokens=tokens)
    files, findings = result.files, result.findings
    for finding in sorted(findings):
        print(finding.line())
    judged = f" (profile {', '.join(result.profiles)})" if result.profiles else ""
    if not findings:
        print(f"deid verify: {files} files checked{judged}, nothing found", file=sys.stderr)
        return EXIT_OK
    counts: dict[str, int] = {}
    for finding in findings:
        counts[finding.code] = counts.get(finding.code, 0) + 1
    print(f"deid verify: {files} files checked{judged}, {len(findings)} findings: " + ", ".join(
        f"{code} {n} ({CODES.get(code, '')})" for code, n in sorted(counts.items())), file=sys.stderr)
    return EXIT_FINDINGS


if __name__ == "__main__":
    sys.exit(main())
