"""A ServiceNow instance that cannot be reached fails at the first try, says where and why, and
is then left alone for the rest of the cycle; one that asks for a long pause is not waited for;
one that answers 503 is still retried."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import trustme

from poam_sync.connectors._http import RetryPolicy
from poam_sync.connectors.servicenow.connector import ServiceNowConnector
from poam_sync.connectors.servicenow.mapping import ServiceNowMapping
from poam_sync.connectors.servicenow.settings import ServiceNowSettings
from poam_sync.errors import RemoteTransientError, RemoteUnreachable
from poam_sync.simulators.servicenow import OAUTH_CLIENT_ID, OAUTH_CLIENT_SECRET, RunningServiceNow
from poam_sync.testing import new_stamp
from tests.test_http import count_sends, dead_port

Make = Callable[..., ServiceNowConnector]
SYS_ID = "0" * 32


def never_sleep(seconds: float) -> None:
    raise AssertionError(f"slept {seconds} s: a dead instance must not be retried")


PATIENT = RetryPolicy(attempts=5, sleep=never_sleep)  # the default ladder, minus the waiting


@pytest.fixture
def sends(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    return count_sends(monkeypatch)


@pytest.fixture
def wrong_ca(tmp_path: Path) -> Path:
    """A CA bundle of some other CA than the one that signed the simulator's certificate."""
    path = tmp_path / "other-ca.pem"
    trustme.CA().cert_pem.write_to_path(str(path))
    return path


def test_connection_refused_is_named_at_the_first_try(
    make_connector: Make, sends: list[str]
) -> None:
    url = f"https://127.0.0.1:{dead_port()}"
    with pytest.raises(RemoteUnreachable) as info:
        make_connector(url=url, retry=PATIENT).prepare()
    assert f"cannot reach ServiceNow at {url}: connection refused" in str(info.value)
    assert f"is ServiceNow running at {url}? check url in config/poam-sync.yaml" in str(info.value)
    assert len(sends) == 1


def test_a_name_that_does_not_resolve_is_named_at_the_first_try(
    make_connector: Make, sends: list[str]
) -> None:
    with pytest.raises(RemoteUnreachable, match=r"sn\.example\.invalid:443: name not resolved"):
        make_connector(url="https://sn.example.invalid", retry=PATIENT).check()
    assert len(sends) == 1


def test_the_wrong_ca_is_named_at_the_first_try(
    make_connector: Make, sn: RunningServiceNow, sends: list[str], wrong_ca: Path
) -> None:
    with pytest.raises(RemoteUnreachable) as info:
        make_connector(ca_bundle=wrong_ca, retry=PATIENT).check()
    message = str(info.value)
    assert f"cannot reach ServiceNow at {sn.url}: certificate verify failed" in message
    assert "check ca_bundle in config/poam-sync.yaml, connector 'servicenow'" in message
    assert len(sends) == 1
    assert sn.sim.control.total_calls() == 0


def test_a_missing_ca_bundle_is_named_at_the_first_try(
    make_connector: Make, sends: list[str], tmp_path: Path
) -> None:
    missing = tmp_path / "servicenow-ca.pem"
    with pytest.raises(RemoteUnreachable, match=f"CA bundle {missing} not found"):
        make_connector(ca_bundle=missing, retry=PATIENT).check()
    assert len(sends) == 1


def test_the_oauth_token_endpoint_unreachable_is_named_too(
    make_connector: Make, sends: list[str]
) -> None:
    url = f"https://127.0.0.1:{dead_port()}"
    c = make_connector(
        url=url,
        user=None,
        password=None,
        client_id=OAUTH_CLIENT_ID,
        client_secret=OAUTH_CLIENT_SECRET,
        retry=PATIENT,
    )
    with pytest.raises(RemoteUnreachable, match=f"{url}: connection refused"):
        c.check()
    assert len(sends) == 1  # the token request; the table request never went


def test_a_dead_instance_is_skipped_after_three_tries_until_the_next_cycle(
    make_connector: Make, sends: list[str]
) -> None:
    c = make_connector(url=f"https://127.0.0.1:{dead_port()}", retry=PATIENT)
    for _ in range(5):
        with pytest.raises(RemoteUnreachable, match="connection refused"):
            c.get(SYS_ID)
    for _ in range(5):  # writes (not retried) pass the same breaker
        with pytest.raises(RemoteUnreachable, match="not tried again in this cycle"):
            c.client.patch("sn_grc_issue", SYS_ID, {"short_description": "x"})
    assert len(sends) == 3
    with pytest.raises(RemoteUnreachable):
        c.prepare()  # the next cycle tries again
    assert len(sends) == 4


def test_a_503_is_still_retried(make_connector: Make, sn: RunningServiceNow) -> None:
    c = make_connector(retry=RetryPolicy(attempts=3, sleep=lambda s: None))
    rec = c.create(new_stamp(), {"title": "retried"}).record
    sn.sim.control.add_fault(503, count=2)
    assert c.get(rec.remote_id).fields["title"] == "retried"


def test_a_retry_after_over_the_cap_is_not_waited_for(
    make_connector: Make, sn: RunningServiceNow
) -> None:
    waits: list[float] = []
    c = make_connector(retry=RetryPolicy(max_retry_after=60, sleep=waits.append))
    rec = c.create(new_stamp(), {"title": "later"}).record
    sn.sim.control.add_fault(429, count=5, retry_after=120)
    with pytest.raises(RemoteTransientError, match="over max_retry_after_seconds") as info:
        c.get(rec.remote_id)
    assert info.value.retry_after == 120 and waits == []
    with pytest.raises(RemoteTransientError, match="not tried again in this cycle"):
        c.get(rec.remote_id)  # the instance asked us to stay away: we do, until next cycle


def test_the_retry_after_cap_is_a_setting(
    sn: RunningServiceNow, sn_mapping: ServiceNowMapping
) -> None:
    settings = ServiceNowSettings(
        url=sn.url, user="u", password="p", ca_bundle=sn.ca_path, max_retry_after_seconds=5
    )
    assert ServiceNowConnector(settings, sn_mapping).retry.max_retry_after == 5
    assert ServiceNowSettings(url=sn.url, user="u", password="p").max_retry_after_seconds == 60
