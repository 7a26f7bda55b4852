"""A Jira that cannot be reached fails at the first try, says where and why, and is then left
alone for the rest of the cycle; a Jira that asks for a long pause is not waited for."""

from __future__ import annotations

from pathlib import Path

import pytest

from poam_sync.connectors._http import RetryPolicy
from poam_sync.connectors.jira.connector import JiraConnector
from poam_sync.connectors.jira.mapping import JiraMapping
from poam_sync.connectors.jira.settings import JiraSettings
from poam_sync.errors import RemoteTransientError, RemoteUnreachable
from poam_sync.simulators.jira import DEFAULT_PAT, RunningJira
from poam_sync.testing import new_stamp
from tests.jira.conftest import settings_for
from tests.test_http import count_sends, dead_port, tls_server

__all__ = ["tls_server"]  # a fixture, shared with tests/test_http.py


def never_sleep(seconds: float) -> None:
    raise AssertionError(f"slept {seconds} s: a dead site must not be retried")


PATIENT = RetryPolicy(attempts=5, sleep=never_sleep)  # the default ladder, minus the waiting


@pytest.fixture
def sends(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    return count_sends(monkeypatch)


def connector_at(url: str, mapping: JiraMapping, **over: object) -> JiraConnector:
    settings = JiraSettings.model_validate(
        {"url": url, "project_key": "POAM", "pat": DEFAULT_PAT, **over}
    )
    return JiraConnector(settings, mapping, retry=PATIENT)


def test_connection_refused_is_named_at_the_first_try(
    mapping: JiraMapping, sends: list[str]
) -> None:
    url = f"http://127.0.0.1:{dead_port()}"
    with pytest.raises(RemoteUnreachable) as info:
        connector_at(url, mapping).check()
    assert str(info.value).startswith(f"cannot reach Jira at {url}: connection refused")
    assert f"is Jira running at {url}? check url in config/poam-sync.yaml" in str(info.value)
    assert len(sends) == 1  # no jira-package retries, no nested ladder (was 25)


def test_a_name_that_does_not_resolve_is_named_at_the_first_try(
    mapping: JiraMapping, sends: list[str]
) -> None:
    with pytest.raises(RemoteUnreachable, match=r"jira\.example\.invalid:443: name not resolved"):
        connector_at("https://jira.example.invalid", mapping).check()
    assert len(sends) == 1


def test_a_certificate_of_an_untrusted_ca_is_named_at_the_first_try(
    mapping: JiraMapping, sends: list[str], tls_server: tuple[str, Path]
) -> None:
    url, other_ca = tls_server
    with pytest.raises(RemoteUnreachable) as info:
        connector_at(url, mapping, verify=other_ca).check()
    assert f"cannot reach Jira at {url}: certificate verify failed" in str(info.value)
    assert "check verify in config/poam-sync.yaml" in str(info.value)
    assert len(sends) == 1


def test_a_missing_ca_bundle_is_named_at_the_first_try(
    mapping: JiraMapping, sends: list[str], tmp_path: Path
) -> None:
    missing = tmp_path / "jira-ca.pem"
    with pytest.raises(RemoteUnreachable, match=f"CA bundle {missing} not found"):
        connector_at(f"https://127.0.0.1:{dead_port()}", mapping, verify=missing).check()
    assert len(sends) == 1


def test_a_dead_site_is_skipped_after_three_tries_until_the_next_cycle(
    mapping: JiraMapping, sends: list[str]
) -> None:
    c = connector_at(f"http://127.0.0.1:{dead_port()}", mapping)
    for _ in range(10):
        with pytest.raises(RemoteUnreachable, match="connection refused"):
            c.find_by_stamp(new_stamp())
    assert len(sends) == 3
    with pytest.raises(RemoteUnreachable):
        c.prepare()  # the next cycle tries again
    assert len(sends) == 4


def test_a_retry_after_over_the_cap_is_not_waited_for(
    jira_sim: RunningJira, mapping: JiraMapping, sends: list[str]
) -> None:
    waits: list[float] = []
    c = JiraConnector(
        settings_for(jira_sim), mapping, retry=RetryPolicy(max_retry_after=60, sleep=waits.append)
    )
    c.check()
    before = len(sends)
    jira_sim.sim.control.add_fault(429, count=5, retry_after=120)
    with pytest.raises(RemoteTransientError, match="over max_retry_after_seconds") as info:
        c.find_by_stamp(new_stamp())
    assert info.value.retry_after == 120 and waits == []
    assert len(sends) == before + 1
    c.close()


def test_the_retry_after_cap_is_a_setting(jira_sim: RunningJira, mapping: JiraMapping) -> None:
    c = JiraConnector(settings_for(jira_sim, max_retry_after_seconds=5), mapping)
    assert c.client.retry.max_retry_after == 5
    assert settings_for(jira_sim).max_retry_after_seconds == 60
