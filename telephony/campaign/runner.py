"""Runs a campaign: N workers claim contacts, dial them within the calling hours, record outcomes.

Each worker is a thread that blocks in :meth:`Switchboard.dial` for its call (the call's real-time
work runs on the call's own audio thread, as for any call); the store decides who is next, so any
number of workers, or a resumed run, never dial the same attempt twice.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from datetime import datetime
from typing import Callable

from brain.outbound import OutboundTask
from telephony.campaign.hours import CallingHours, Clock, SystemClock
from telephony.campaign.store import CampaignStore, Claim
from telephony.phone_call import CallOutcome, PhoneCall

log = logging.getLogger(__name__)

OUTCOMES = ("answered-human", "voicemail", "no-answer", "busy", "rejected", "failed", "invalid", "interrupted")
RETRYABLE = {"busy", "no-answer"}

Dialer = Callable[[str, OutboundTask, Callable[[PhoneCall], None]], CallOutcome]


def campaign_outcome(call: CallOutcome) -> str:
    """A call's outcome in campaign terms."""
    if call.status == "voicemail":
        return "voicemail"
    if call.status == "completed":
        # A machine that cut us off before the beep: nobody heard anything; try again later.
        return "no-answer" if call.answered_by == "machine" else "answered-human"
    if call.status in ("busy", "no-answer", "rejected", "invalid"):
        return call.status
    return "failed"


@dataclass
class CampaignOptions:
    concurrency: int
    hours: CallingHours
    retries: int
    retry_after_s: float

    @property
    def max_attempts(self) -> int:
        return 1 + self.retries


@dataclass
class Progress:
    """What the progress display shows; updated by the workers."""

    in_flight: dict[str, str] = field(default_factory=dict)  # worker -> uri
    last: list[str] = field(default_factory=list)  # recent outcomes, newest last
    waiting_until: datetime | None = None  # outside the calling hours
    max_in_flight: int = 0


class CampaignRunner:
    def __init__(self, store: CampaignStore, name: str, options: CampaignOptions, dialer: Dialer,
                 clock: Clock | None = None) -> None:
        self.store = store
        self.name = name
        self.goal = store.campaign(name).goal
        self.options = options
        self.dialer = dialer
        self.clock = clock or SystemClock()
        self.progress = Progress()
        self.stop_event = threading.Event()
        self._lock = threading.Lock()

    def run(self) -> dict[str, int]:
        """Dial until every contact is done (or :meth:`stop`); returns the counts by outcome."""
        workers = [threading.Thread(target=self._work, args=(f"w{i + 1}",), name=f"campaign-w{i + 1}", daemon=True)
                   for i in range(self.options.concurrency)]
        self.store.set_status(self.name, "running")
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
        counts = self.store.counts(self.name)
        if not self.stop_event.is_set():
            self.store.set_status(self.name, "finished")
        return counts

    def stop(self) -> None:
        """No new calls; calls in progress finish normally."""
        self.stop_event.set()

    def _work(self, worker: str) -> None:
        while not self.stop_event.is_set():
            now = self.clock.now()
            hours = self.options.hours
            if not hours.is_open(now):
                opens = hours.next_open(now)
                self.progress.waiting_until = opens
                if self._finished():
                    return
                self.clock.sleep(min(3600.0, (opens - now).total_seconds()), self.stop_event)
                continue
            self.progress.waiting_until = None
            claim = self.store.claim(self.name, now.timestamp(), worker)
            if claim is None:
                if self._finished():
                    return
                due = self.store.next_due(self.name)
                # Nothing due: others are on calls (wait a moment) or retries wait for their time.
                wait = 0.2 if due is None else max(0.05, min(60.0, due - now.timestamp()))
                self.clock.sleep(wait, self.stop_event)
                continue
            self._call(worker, claim)

    def _finished(self) -> bool:
        return self.store.unfinished(self.name) == 0

    def _call(self, worker: str, claim: Claim) -> None:
        with self._lock:
            self.progress.in_flight[worker] = claim.contact.uri
            self.progress.max_in_flight = max(self.progress.max_in_flight, len(self.progress.in_flight))
        try:
            task = OutboundTask(self.goal, claim.contact.variables, self.name)
            log.info("campaign %s: calling %s (line %d, attempt %d)", self.name, claim.contact.uri,
                     claim.contact.line, claim.number)

            def started(call: PhoneCall) -> None:
                self.store.answered(claim.attempt_id, call.call_id, call.outcome.conversation_id)

            try:
                call = self.dialer(claim.contact.uri, task, started)
            except Exception as exc:  # noqa: BLE001 - one broken call must not stop the campaign
                log.exception("campaign %s: call to %s failed", self.name, claim.contact.uri)
                call = CallOutcome("", "outbound", claim.contact.uri, "failed", ended_by=str(exc))
            outcome = campaign_outcome(call)
            retry_at = None
            if outcome in RETRYABLE and claim.number < self.options.max_attempts:
                retry_at = self.clock.now().timestamp() + self.options.retry_after_s
            self.store.finish(claim, outcome, retry_at=retry_at, sip_code=call.sip_code, call_id=call.call_id,
                              conversation_id=call.conversation_id, goal_achieved=call.goal_achieved,
                              summary=call.summary, recording=call.recording)
            log.info("campaign %s: %s -> %s%s", self.name, claim.contact.uri, outcome,
                     " (retry later)" if retry_at else "")
            with self._lock:
                self.progress.last = (self.progress.last + [f"line {claim.contact.line}: {outcome}"])[-5:]
        finally:
            with self._lock:
                self.progress.in_flight.pop(worker, None)
