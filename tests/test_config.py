"""Configuration: environment references, clear errors naming the option, no secrets in files."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from poam_sync.config import config_path, load_config, parse_config
from poam_sync.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]
ENV = {
    "JIRA_URL": "http://127.0.0.1:8080",
    "JIRA_USER": "sync@example.com",
    "JIRA_TOKEN": "sim-token",
    "SERVICENOW_URL": "https://127.0.0.1:8443",
    "SERVICENOW_USER": "admin",
    "SERVICENOW_PASSWORD": "sim-password",
    "SERVICENOW_CA_BUNDLE": "certs/ca.pem",
}


def example() -> dict[str, object]:
    data = yaml.safe_load((ROOT / "config" / "poam-sync.example.yaml").read_text())
    assert isinstance(data, dict)
    return data


def test_the_example_config_is_valid_with_the_documented_variables() -> None:
    config = parse_config(example(), env=ENV, base=ROOT)
    assert [c.name for c in config.connectors] == ["jira", "servicenow"]
    jira = config.connector("jira")
    assert jira.settings["url"] == "http://127.0.0.1:8080"
    assert jira.mapping == ROOT / "mappings" / "jira.yaml"
    assert config.connector("servicenow").import_new is True
    assert config.policy.fields["scheduled_completion_date"].owner == "local"
    assert config.database_url == "sqlite:///poam-sync.db"


def test_load_config_resolves_paths_from_the_project_folder() -> None:
    config = load_config(ROOT / "config" / "poam-sync.example.yaml", env=ENV)
    assert config.connector("servicenow").mapping == ROOT / "mappings" / "servicenow.yaml"


def test_a_missing_required_option_names_section_and_option() -> None:
    raw = example()
    del raw["connectors"]["jira"]["project_key"]  # type: ignore[index]
    with pytest.raises(ConfigError) as exc:
        parse_config(raw, env=ENV, base=ROOT)
    assert "[connectors.jira] project_key <- field required" in str(exc.value)
    assert exc.value.exit_code == 2


def test_an_unknown_key_is_rejected() -> None:
    raw = example()
    raw["connectors"]["servicenow"]["tabel"] = "sn_grc_issue"  # type: ignore[index]
    with pytest.raises(ConfigError, match=r"\[connectors.servicenow\] tabel <- extra inputs"):
        parse_config(raw, env=ENV, base=ROOT)
    raw = example()
    raw["guards"]["max_share"] = 0.2  # type: ignore[index]
    with pytest.raises(ConfigError, match=r"\[config\] guards.max_share"):
        parse_config(raw, env=ENV, base=ROOT)


def test_an_unset_variable_is_named_with_what_to_do() -> None:
    env = {k: v for k, v in ENV.items() if k != "JIRA_TOKEN"}
    with pytest.raises(ConfigError) as exc:
        parse_config(example(), env=env, base=ROOT)
    assert "[connectors.jira] token <- environment variable JIRA_TOKEN is not set" in str(exc.value)
    assert "export JIRA_TOKEN" in str(exc.value)


def test_every_unset_variable_is_named_at_once() -> None:
    with pytest.raises(ConfigError) as exc:
        parse_config(example(), env={"JIRA_URL": "http://127.0.0.1:8080"}, base=ROOT)
    text = str(exc.value)
    for line in (
        "[connectors.jira] email <- environment variable JIRA_USER is not set",
        "[connectors.jira] token <- environment variable JIRA_TOKEN is not set",
        "[connectors.servicenow] url <- environment variable SERVICENOW_URL is not set",
        "[connectors.servicenow] password <- environment variable SERVICENOW_PASSWORD is not set",
    ):
        assert line in text
    assert "JIRA_URL" not in text.split("export")[0]
    assert "export JIRA_USER=... JIRA_TOKEN=... SERVICENOW_URL=..." in text


def test_the_config_is_found_here_then_in_the_user_config_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    home = tmp_path / "xdg"
    env = {"XDG_CONFIG_HOME": str(home)}
    assert config_path(None, env=env) == Path("config/poam-sync.yaml")  # neither: the local one
    user = home / "poam-sync" / "poam-sync.yaml"
    user.parent.mkdir(parents=True)
    user.write_text("connectors: {}\n")
    assert config_path(None, env=env) == user
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "poam-sync.yaml").write_text("connectors: {}\n")
    assert config_path(None, env=env) == Path("config/poam-sync.yaml")  # the folder's own wins
    assert config_path(None, env={**env, "POAM_SYNC_CONFIG": "other.yaml"}) == Path("other.yaml")
    assert config_path(tmp_path / "x.yaml", env=env) == tmp_path / "x.yaml"


def test_a_secret_written_in_the_file_is_refused() -> None:
    raw = example()
    raw["connectors"]["jira"]["token"] = "hunter2"  # type: ignore[index]
    with pytest.raises(ConfigError) as exc:
        parse_config(raw, env=ENV, base=ROOT)
    assert "[connectors.jira] token <- a secret is written in the file" in str(exc.value)
    assert "hunter2" not in str(exc.value)


def test_secrets_can_come_from_files(tmp_path: Path) -> None:
    (tmp_path / "token").write_text("from-a-file\n")
    raw = example()
    raw["connectors"]["jira"]["token"] = "${file:token}"  # type: ignore[index]
    config = parse_config(raw, env=ENV, base=tmp_path)
    assert config.connector("jira").settings["token"] == "from-a-file"


def test_defaults_in_references() -> None:
    raw = {"database_url": "${DB_URL:-sqlite:///x.db}", "system": "${SYS:-acme}"}
    config = parse_config(raw, env={}, base=ROOT)
    assert (config.database_url, config.system) == ("sqlite:///x.db", "acme")


def test_connector_settings_are_checked_by_the_connector_model() -> None:
    raw = example()
    raw["connectors"]["jira"]["pat"] = "${JIRA_TOKEN}"  # type: ignore[index]
    with pytest.raises(ConfigError, match=r"\[connectors.jira\]"):
        parse_config(raw, env=ENV, base=ROOT)  # token and pat together


def test_no_config_file_says_how_to_make_one(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="poam-sync init"):
        load_config(tmp_path / "missing.yaml")


@pytest.mark.parametrize(
    ("shipped", "source"),
    [
        ("data/poam-sync.example.yaml", "config/poam-sync.example.yaml"),
        ("connectors/jira/mapping.yaml", "mappings/jira.yaml"),
        ("connectors/servicenow/mapping.yaml", "mappings/servicenow.yaml"),
    ],
)
def test_files_shipped_for_init_match_the_repository(shipped: str, source: str) -> None:
    """`poam-sync init` writes the copies shipped in the package: they must not drift."""
    assert (ROOT / "poam_sync" / shipped).read_text() == (ROOT / source).read_text()


def test_an_unknown_connector_type_names_the_installed_ones() -> None:
    raw = example()
    connectors = raw["connectors"]
    assert isinstance(connectors, dict)
    connectors["jira"]["type"] = "archer"
    with pytest.raises(ConfigError) as exc:
        parse_config(raw, env=ENV, base=ROOT)
    message = str(exc.value)
    assert "[connectors.jira] type <- unknown connector type 'archer'" in message
    installed = message.partition("installed: ")[2].partition(")")[0].split(", ")
    assert {"jira", "servicenow"} <= set(installed)  # and any plugin in the environment


def test_a_bad_value_points_at_the_loaded_file_and_init(tmp_path: Path) -> None:
    raw = example()
    del raw["connectors"]["jira"]["project_key"]  # type: ignore[index]
    path = tmp_path / "config" / "poam-sync.yaml"
    path.parent.mkdir()
    path.write_text(yaml.safe_dump(raw))
    with pytest.raises(ConfigError) as exc:
        load_config(path, env=ENV)
    assert exc.value.hint is not None
    assert str(path) in exc.value.hint and "poam-sync init" in exc.value.hint
    assert "poam-sync.example.yaml" not in exc.value.hint


def _with_token(ref: str) -> dict[str, object]:
    raw = example()
    raw["connectors"]["jira"]["token"] = ref  # type: ignore[index]
    return raw


def test_a_secret_can_come_from_a_command(tmp_path: Path) -> None:
    import shlex
    import sys

    python = shlex.quote(sys.executable)
    raw = _with_token(f"${{cmd:{python} -c \"print('from-the-vault')\"}}")
    assert parse_config(raw, env=ENV, base=tmp_path).connector("jira").settings["token"] == (
        "from-the-vault"
    )
    failing = _with_token(
        f"${{cmd:{python} -c \"import sys; print('s3cret'); sys.exit('vault is sealed')\"}}"
    )
    with pytest.raises(ConfigError) as exc:
        parse_config(failing, env=ENV, base=tmp_path)
    assert "[connectors.jira] token <- the secret command" in str(exc.value)
    assert "exited with 1: vault is sealed" in str(exc.value) and "s3cret" not in str(exc.value)
    with pytest.raises(ConfigError, match="was not found"):
        parse_config(_with_token("${cmd:no-such-vault-tool get x}"), env=ENV, base=tmp_path)


def test_a_secret_can_come_from_the_keyring(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys
    import types

    held = {("poam-sync-jira", "sync@example.com"): "from-the-keyring"}
    fake = types.ModuleType("keyring")
    fake.get_password = lambda service, user: held.get((service, user))  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "keyring", fake)
    raw = _with_token("${keyring:poam-sync-jira/sync@example.com}")
    assert parse_config(raw, env=ENV, base=ROOT).connector("jira").settings["token"] == (
        "from-the-keyring"
    )
    with pytest.raises(ConfigError) as exc:
        parse_config(_with_token("${keyring:poam-sync-jira/other}"), env=ENV, base=ROOT)
    assert "holds no secret for poam-sync-jira / other" in str(exc.value)
    assert "keyring set poam-sync-jira other" in str(exc.value)
    monkeypatch.setitem(sys.modules, "keyring", None)  # not installed
    with pytest.raises(ConfigError, match="needs the keyring package"):
        parse_config(raw, env=ENV, base=ROOT)
