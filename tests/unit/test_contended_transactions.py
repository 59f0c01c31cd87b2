"""A transaction the Firestore client gives up on (contention) is run again after short pauses,
then answered as BackendUnavailable; other failures are not retried."""

from __future__ import annotations

import pytest
from prediction_api import adapters
from prediction_api.adapters import CONTENDED_PAUSES_SECONDS, run_transaction
from prediction_api.errors import BackendUnavailable

GAVE_UP = ValueError("Failed to commit transaction in 5 attempts.")


class Client:
    def __init__(self) -> None:
        self.transactions = 0

    def transaction(self):
        self.transactions += 1
        return self.transactions


@pytest.fixture
def pauses(monkeypatch) -> list[float]:
    slept: list[float] = []
    monkeypatch.setattr(adapters.time, "sleep", slept.append)
    return slept


def outcomes(*results):
    """A run() that raises or returns each of results in turn, one per transaction."""
    queue = list(results)

    def run(transaction):
        result = queue.pop(0)
        if isinstance(result, BaseException):
            raise result
        return result

    return run


def test_a_contended_transaction_is_run_again_after_a_pause_until_it_commits(pauses):
    client = Client()
    assert run_transaction(client, outcomes(GAVE_UP, GAVE_UP, "done")) == "done"
    assert client.transactions == 3 and pauses == list(CONTENDED_PAUSES_SECONDS[:2])


def test_one_that_stays_contended_is_backend_unavailable_after_every_pause(pauses):
    client = Client()
    rounds = len(CONTENDED_PAUSES_SECONDS) + 1
    with pytest.raises(BackendUnavailable, match="Firestore is unavailable"):
        run_transaction(client, outcomes(*[GAVE_UP] * rounds))
    assert client.transactions == rounds and pauses == list(CONTENDED_PAUSES_SECONDS)


def test_what_the_decision_raises_comes_out_unchanged_and_is_not_retried(pauses):
    client = Client()
    with pytest.raises(ValueError, match="not a contention"):
        run_transaction(client, outcomes(ValueError("not a contention")))
    assert client.transactions == 1 and pauses == []
