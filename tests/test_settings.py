"""Service settings: YAML < environment < flags; a bad setting is refused naming its key."""

from __future__ import annotations

from pathlib import Path

import pytest
from support import deid

from deid.errors import UsageError
from deid.settings import AllowedCaller, load_settings

FLAGS = {
    "ae_title": "DEID",
    "host": "127.0.0.1",
    "port": 11112,
    "allow": ["SENDER"],
    "destinations": ["DEST@127.0.0.1:11113"],
    "profile": "vghtpe",
    "key_file": "K",
    "data": "DIR",
}


def test_flags_alone_make_settings_like_storescp(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    settings = load_settings(
        None, flags={**FLAGS, "allow": ["SENDER", "PACS@10.0.0.5"]}, environ={}
    )
    assert settings.ae_title == "DEID" and settings.port == 11112 and settings.host == "127.0.0.1"
    assert settings.allow == (AllowedCaller("SENDER"), AllowedCaller("PACS", "10.0.0.5"))
    (dest,) = settings.destinations
    assert (dest.ae_title, dest.host, dest.port, dest.calling_ae_title) == (
        "DEST",
        "127.0.0.1",
        11113,
        "DEID",
    )
    assert settings.data == tmp_path / "DIR" and settings.key_file == tmp_path / "K"


def test_yaml_then_environment_then_flags(tmp_path: Path) -> None:
    config = tmp_path / "deid.yaml"
    config.write_text(
        "ae_title: NODE\nport: 104\nallow: [{ae_title: PACS, host: 10.1.1.1}]\n"
        "max_associations: 4\n"
        "data: data\nkey_file: secret.key\nworkers: 3\nstatus_port: 9100\n"
        "destinations:\n  - {ae_title: RESEARCH, host: research.example, port: 11112,"
        " calling_ae_title: DEIDOUT, max_associations: 2}\n"
        "retry: {first_delay: 1, max_delay: 60}\n"
    )
    settings = load_settings(config, environ={})
    assert settings.destinations[0].max_associations == 2
    assert (settings.ae_title, settings.port, settings.max_associations, settings.workers) == (
        "NODE",
        104,
        4,
        3,
    )
    assert settings.data == tmp_path / "data" and settings.status_port == 9100
    assert settings.destinations[0].calling_ae_title == "DEIDOUT" and settings.retry.max_delay == 60
    env = {
        "DEID_SERVE_PORT": "2104",
        "DEID_SERVE_FORWARD": "A@h1:1,B@h2:2",
        "DEID_SERVE_RETRY_MAX_DELAY": "5",
    }
    settings = load_settings(config, environ=env)
    assert settings.port == 2104 and [d.name for d in settings.destinations] == ["A@h1:1", "B@h2:2"]
    assert settings.retry == type(settings.retry)(1.0, 5.0)
    settings = load_settings(config, environ=env, flags={"port": 3104})
    assert settings.port == 3104
    assert settings.worker_nice == 10  # the default
    assert load_settings(config, environ={"DEID_SERVE_WORKER_NICE": "0"}).worker_nice == 0


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"port": 70000}, "port"),
        ({"ae_title": "A_TITLE_LONGER_THAN_16"}, "ae_title"),
        ({"destinations": ["DEST-127.0.0.1"]}, "destinations[0]"),
        ({"allow": []}, "allow"),
        ({"destinations": []}, "destinations"),
        ({"data": None}, "data"),
        ({"workers": 0}, "workers"),
        ({"worker_nice": 20}, "worker_nice"),
        ({"worker_nice": -1}, "worker_nice"),
        ({"tls.cert": "missing.pem", "tls.key": "missing.key"}, "tls.cert"),
    ],
)
def test_bad_setting_is_refused_naming_the_key(tmp_path: Path, change: dict, named: str) -> None:
    with pytest.raises(UsageError) as error:
        load_settings(None, flags={**FLAGS, "data": str(tmp_path / "d"), **change}, environ={})
    assert str(error.value).startswith(named)


def test_unknown_yaml_key_and_environment_name_are_refused(tmp_path: Path) -> None:
    config = tmp_path / "deid.yaml"
    config.write_text("data: d\nkey_file: k\nallow: [S]\ndestinations: ['D@h:1']\nprot: 104\n")
    with pytest.raises(UsageError, match=r"^prot: unknown setting"):
        load_settings(config, environ={})
    config.write_text(
        "data: d\nkey_file: k\nallow: [S]\ndestinations: [{ae_title: D, host: h, port: x}]\n"
    )
    with pytest.raises(UsageError, match=r"^destinations\[0\]\.port"):
        load_settings(config, environ={})
    config.write_text("data: d\nkey_file: k\nallow: [S]\ndestinations: ['D@h:1']\n")
    with pytest.raises(UsageError, match=r"^DEID_SERVE_PROT: unknown"):
        load_settings(config, environ={"DEID_SERVE_PROT": "1"})


def test_bad_config_exits_2_naming_the_key(tmp_path: Path, key_file: Path) -> None:
    config = tmp_path / "deid.yaml"
    config.write_text(
        f"data: {tmp_path / 'data'}\nkey_file: {key_file}\nallow: [SENDER]\n"
        "destinations: ['DEST@127.0.0.1:104']\nmax_associations: lots\n"
    )
    result = deid("serve", "--config", config)
    assert result.returncode == 2
    assert "max_associations" in result.stderr
    result = deid(
        "serve",
        "--config",
        config,
        env={"DEID_SERVE_MAX_ASSOCIATIONS": "2", "DEID_SERVE_PORT": "-1"},
    )
    assert result.returncode == 2 and "port" in result.stderr


def test_the_shipped_example_configs_load() -> None:
    from support import REPO

    example = load_settings(REPO / "deploy" / "deid-serve.example.yaml", environ={})
    assert example.ae_title == "DEID" and example.status_port == 9102 and len(example.allow) == 2
    assert example.allow[1] == AllowedCaller("CT_SCANNER_1", "10.1.2.3")
    compose = load_settings(REPO / "deploy" / "compose" / "deid.yaml", environ={})
    assert [d.name for d in compose.destinations] == ["DOWNSTREAM@downstream:4242"]


def test_destination_tls_and_server_tls_files(tmp_path: Path) -> None:
    from deid.synthetic.certificates import write_tls_material

    tls = write_tls_material(tmp_path / "tls")
    config = tmp_path / "deid.yaml"
    config.write_text(
        f"data: d\nkey_file: k\nallow: [S]\n"
        f"tls: {{cert: {tls.server_cert}, key: {tls.server_key}, ca: {tls.ca}}}\n"
        f"destinations:\n  - {{ae_title: R, host: h, port: 1, tls: {{ca: tls/ca.pem}}}}\n"
    )
    settings = load_settings(config, environ={})
    assert settings.tls is not None and settings.tls.ca == tls.ca
    (destination,) = settings.destinations
    assert destination.tls is not None and destination.tls.ca == tls.ca and destination.tls.cert is None
    config.write_text(
        "data: d\nkey_file: k\nallow: [S]\n"
        "destinations:\n  - {ae_title: R, host: h, port: 1, tls: {cert: tls/client.pem}}\n"
    )
    with pytest.raises(UsageError, match=r"^destinations\[0\]\.tls: cert and key go together"):
        load_settings(config, environ={})


def test_a_destination_opens_one_association_unless_told(tmp_path: Path) -> None:
    from deid.settings import parse_destination

    assert parse_destination("d", "A@h:1", tmp_path).max_associations == 1
    with pytest.raises(UsageError, match=r"d.max_associations: between 1 and 64"):
        parse_destination("d", {"ae_title": "A", "host": "h", "port": 1, "max_associations": 0},
                          tmp_path)


def test_a_folder_destination_from_the_yaml(tmp_path: Path) -> None:
    """``{folder: PATH}`` (relative to the config file): the node writes a release folder, named
    ``folder`` in the spool and the records; one per node, never inside the data folder."""
    from deid.settings import FolderDestinationSettings

    config = tmp_path / "deid.yaml"
    config.write_text("data: data\nkey_file: k\nallow: [S]\n"
                      "destinations:\n  - folder: release\n  - R@h:1\n")
    settings = load_settings(config, environ={})
    assert settings.destinations[0] == FolderDestinationSettings(tmp_path / "release")
    assert [d.name for d in settings.destinations] == ["folder", "R@h:1"]
    for destinations, message in (
        ("[{folder: a}, {folder: b}]", r"^destinations: one output folder per node"),
        ("[{folder: data/release}]", r"^destinations: the output folder .* must not be inside"),
        ("[{folder: .}]", r"^destinations: the output folder .* must not be inside"),
        ("[{folder: release, max_requests: 2}]", r"^destinations\[0\]\.max_requests: unknown"),
        ("[{folder: k}]", r"^destinations\[0\]\.folder: .*/k: not a folder"),
    ):
        (tmp_path / "k").write_text("")
        config.write_text(f"data: data\nkey_file: k\nallow: [S]\ndestinations: {destinations}\n")
        with pytest.raises(UsageError, match=message):
            load_settings(config, environ={})
