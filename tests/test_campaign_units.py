"""Campaign building blocks on real files: the contact list, calling hours, the SQLite store, the goal flow."""

from __future__ import annotations

import threading
from datetime import datetime, timezone
from zoneinfo import ZoneInfo

import pytest

from brain.outbound import GoalFlow, GoalTemplateError, OutboundTask, classify_answer, fill_goal, \
    sounds_like_answering_machine
from config.settings import JobSettings
from telephony.campaign.contacts import ContactListError, load_contacts
from telephony.campaign.hours import CallingHours, parse_duration
from telephony.campaign.store import CampaignError, CampaignStore

GOAL = "confirm your appointment tomorrow at {time}"


def write(tmp_path, text: str, name: str = "people.csv"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_bad_rows_are_reported_with_their_line_numbers_and_the_rest_is_kept(tmp_path):
    path = write(tmp_path, "name,phone,time\n"
                           "Alice,sip:alice@127.0.0.1:5999,10:15\n"
                           "Bob,+44 20 7946 0018,11:00\n"
                           "Carol,,12:00\n"
                           "Dan,sip:dan@127.0.0.1:5998\n"
                           "\n"
                           "Eve,sip:alice@127.0.0.1:5999,13:00\n"
                           "Frank,not-a-number,14:00\n"
                           "Gina,sip:gina@127.0.0.1:5997,\n")
    contacts = load_contacts(path, GOAL, dial_host="pbx.example.com")
    assert [(c.line, c.uri) for c in contacts.contacts] == [
        (2, "sip:alice@127.0.0.1:5999"), (3, "sip:+442079460018@pbx.example.com")]
    assert contacts.contacts[0].variables == {"name": "Alice", "phone": "sip:alice@127.0.0.1:5999", "time": "10:15"}
    assert [str(p) for p in contacts.problems] == [
        "line 4: no number",
        "line 5: 2 fields, the header has 3",
        "line 7: same number as line 2",
        "line 8: 'not-a-number' is not a phone number or SIP URI",
        "line 9: goal needs time, which this contact does not have",
    ]
    without_pbx = load_contacts(path, GOAL, dial_host=None)
    assert "no [sip] registrar" in next(str(p) for p in without_pbx.problems if p.line == 3)


@pytest.mark.parametrize("text,goal,message", [
    ("name,email\nAlice,a@example.com\n", GOAL, "no number column"),
    ("name,phone\nAlice,sip:a@127.0.0.1\n", GOAL, "the goal uses {time}"),
    ("", GOAL, "empty"),
    ("phone\nsip:a@127.0.0.1\n", "confirm {", "goal"),
])
def test_a_contact_list_that_cannot_be_used_is_a_clear_error(tmp_path, text, goal, message):
    with pytest.raises(ContactListError, match=message.replace("{", r"\{")):
        load_contacts(write(tmp_path, text), goal)


def test_semicolon_files_and_a_byte_order_mark_are_read(tmp_path):
    path = tmp_path / "excel.csv"
    path.write_bytes("\ufeffName;Number;time\nAlice;sip:alice@127.0.0.1;09:30\n".encode("utf-8"))
    [contact] = load_contacts(path, GOAL).contacts
    assert contact.uri == "sip:alice@127.0.0.1" and contact.variables["Name"] == "Alice"


def test_calling_hours_in_the_campaign_time_zone():
    hours = CallingHours.parse("09:00-18:00", "Europe/London")
    london = ZoneInfo("Europe/London")
    assert hours.is_open(datetime(2026, 11, 25, 9, 0, tzinfo=london))
    assert not hours.is_open(datetime(2026, 11, 25, 18, 0, tzinfo=london))
    assert not hours.is_open(datetime(2026, 11, 25, 8, 59, tzinfo=london))
    # 08:30 UTC in July is 09:30 in London (summer time)
    assert hours.is_open(datetime(2026, 7, 1, 8, 30, tzinfo=timezone.utc))
    evening = datetime(2026, 11, 25, 19, 0, tzinfo=london)
    assert hours.next_open(evening) == datetime(2026, 11, 26, 9, 0, tzinfo=london)
    morning = datetime(2026, 11, 25, 7, 0, tzinfo=london)
    assert hours.next_open(morning) == datetime(2026, 11, 25, 9, 0, tzinfo=london)
    night = CallingHours.parse("22:00-06:00", "UTC")
    assert night.is_open(datetime(2026, 11, 25, 23, 0, tzinfo=timezone.utc))
    assert night.is_open(datetime(2026, 11, 25, 5, 0, tzinfo=timezone.utc))
    assert not night.is_open(datetime(2026, 11, 25, 12, 0, tzinfo=timezone.utc))
    for span, zone in (("9-18", "UTC"), ("09:00-09:00", "UTC"), ("09:00-18:00", "Mars/Olympus")):
        with pytest.raises(ValueError):
            CallingHours.parse(span, zone)


def test_retry_delays_are_read_like_people_write_them():
    assert parse_duration("30m") == 1800 and parse_duration("1h30m") == 5400 and parse_duration("90") == 90
    assert parse_duration("2d") == 172800 and parse_duration("45s") == 45
    with pytest.raises(ValueError):
        parse_duration("soon")


def _store_with(tmp_path, count: int) -> tuple[CampaignStore, list]:
    lines = "\n".join(f"sip:c{i}@127.0.0.1,{i}" for i in range(count))
    contacts = load_contacts(write(tmp_path, "uri,time\n" + lines + "\n"), GOAL).contacts
    store = CampaignStore(tmp_path / "campaigns.sqlite3")
    store.create("c", GOAL, "people.csv", {}, contacts)
    return store, contacts


def test_concurrent_workers_never_claim_the_same_attempt(tmp_path):
    store, contacts = _store_with(tmp_path, 40)
    claimed: list = []
    lock = threading.Lock()

    def worker(name: str) -> None:
        while (claim := store.claim("c", 1e12, name)) is not None:
            with lock:
                claimed.append((claim.contact.uri, claim.number))
            store.finish(claim, "answered-human", retry_at=None)

    threads = [threading.Thread(target=worker, args=(f"w{i}",)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(claimed) == sorted((c.uri, 1) for c in contacts)
    assert store.unfinished("c") == 0 and store.counts("c")["answered-human"] == 40
    with pytest.raises(CampaignError, match="exists already"):
        store.create("c", GOAL, "people.csv", {}, contacts)
    with pytest.raises(CampaignError, match="no campaign named 'd'"):
        store.campaign("d")


def test_a_crash_mid_call_is_recovered_without_a_second_dial_of_that_attempt(tmp_path):
    store, _ = _store_with(tmp_path, 4)
    answered = store.claim("c", 1e12, "w1")
    store.answered(answered.attempt_id, "call-1", None)
    ringing = store.claim("c", 1e12, "w2")
    finished = store.claim("c", 1e12, "w3")
    store.finish(finished, "busy", retry_at=100.0)
    store.close()
    store = CampaignStore(tmp_path / "campaigns.sqlite3")  # a new process after kill -9
    assert store.recover("c", now=50.0) == {"answered": 1, "retry": 1}
    rows = {r["uri"]: r for r in store.contacts("c")}
    assert rows[answered.contact.uri]["state"] == "done" and rows[answered.contact.uri]["outcome"] == "interrupted"
    assert rows[ringing.contact.uri]["state"] == "pending" and rows[ringing.contact.uri]["next_at"] == 50.0
    order = []
    while (claim := store.claim("c", 1e12, "w")) is not None:
        order.append((claim.contact.uri, claim.number))
        store.finish(claim, "answered-human", retry_at=None)
    # the unanswered call gets its 2nd attempt, the untouched contact its 1st, the busy one its retry
    assert sorted(order) == sorted([(ringing.contact.uri, 2), ("sip:c3@127.0.0.1", 1), (finished.contact.uri, 2)])
    attempts = store.attempts("c")
    assert len({(a["contact_id"], a["number"]) for a in attempts}) == len(attempts) == 6


@pytest.mark.parametrize("said,kind", [
    ("Yes, that's right.", "yes"), ("Yeah sure.", "yes"), ("That's fine, I'll be there.", "yes"),
    ("No problem at all.", "yes"), ("No, I can't make it.", "no"), ("I need to cancel.", "no"),
    ("Nope.", "no"), ("You have the wrong number.", "wrong-person"), ("Can you call me back later?", "not-now"),
    ("I'm not sure.", "unclear"), ("What was that?", "unclear"),
])
def test_the_answer_to_the_goal_is_read_from_the_callee_s_words(said, kind):
    assert classify_answer(said) == kind


def test_the_goal_flow_opens_asks_and_records_the_result():
    task = OutboundTask(GOAL, {"name": "Alice", "time": "10:15"}, "reminders")
    flow = GoalFlow(task, JobSettings())
    opening, end = flow.handle("Hello?")
    assert not end and opening == ("Hello Alice, this is Ava from Northwind Dental. "
                                   "I'm calling to confirm your appointment tomorrow at 10:15. Can you confirm that?")
    again, end = flow.handle("Sorry, who?")
    assert not end and "10:15" in again
    reply, end = flow.handle("Yes, that's right.")
    assert end and "Thank you, Alice" in reply
    assert flow.result.achieved is True and "Yes, that's right." in flow.result.summary
    assert flow.handle("anything") is None
    machine = GoalFlow(OutboundTask("to remind you about {time}", {"time": "noon"}), JobSettings())
    assert machine.voicemail_message().startswith("Hello, this is Ava from Northwind Dental. I'm calling to remind you about noon.")
    assert machine.result.answer == "voicemail" and machine.result.achieved is None
    with pytest.raises(GoalTemplateError):
        fill_goal(GOAL, {})


def test_answering_machine_greetings_are_recognised_by_their_words():
    assert sounds_like_answering_machine("Hi, you've reached Bob. Please leave a message after the tone.")
    assert sounds_like_answering_machine("The person you are calling is not available.")
    assert not sounds_like_answering_machine("Hello? Bob speaking.")
