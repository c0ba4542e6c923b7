"""``employai campaign run|resume|status|export|list``."""

from __future__ import annotations

import json
import signal
import sys
import threading
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Annotated, Optional

import typer

from config import Settings
from telephony.campaign.export import write_results
from telephony.cli_support import ConfigOption, _fail, _settings, _start

campaign_app = typer.Typer(help="Outbound call campaigns: a contact list and a goal.", no_args_is_help=True)

ESTIMATED_CALL_S = 60  # for the dry run's schedule only


def _store(settings: Settings):
    from telephony.campaign.store import CampaignStore

    return CampaignStore(settings.service.data_dir / "campaigns.sqlite3")


def _campaign(store, name: str):
    """The named campaign, or exit saying which ones exist."""
    from telephony.campaign.store import CampaignError

    try:
        return store.campaign(name)
    except CampaignError as exc:
        raise _fail(str(exc)) from exc


def _options(settings: Settings, concurrency: int | None, hours: str | None, timezone: str | None,
             retries: int | None, retry_after: str | float | None):
    from telephony.campaign.hours import CallingHours, parse_duration
    from telephony.campaign.runner import CampaignOptions

    defaults = settings.campaign
    try:
        calling = CallingHours.parse(hours or defaults.hours, timezone or defaults.timezone or settings.job.timezone)
        wait = retry_after if isinstance(retry_after, float) else (
            parse_duration(retry_after) if retry_after else defaults.retry_after_s)
    except ValueError as exc:
        raise _fail(str(exc)) from exc
    count = concurrency or defaults.concurrency
    if count < 1:
        raise _fail("--concurrency must be at least 1")
    tries = defaults.retries if retries is None else retries
    if tries < 0:
        raise _fail("--retries cannot be negative")
    return CampaignOptions(count, calling, tries, wait)


def _describe(options) -> str:
    return (f"calling hours {options.hours}; up to {options.concurrency} calls at once; "
            f"{options.retries} retr{'y' if options.retries == 1 else 'ies'} for busy / no answer "
            f"after {timedelta(seconds=round(options.retry_after_s))}")


@campaign_app.command("run")
def campaign_run(
    contacts: Annotated[Path, typer.Argument(help="CSV: a number (or SIP URI) column plus any columns for the agent.")],
    goal: Annotated[str, typer.Option("--goal", help="Why we call, e.g. 'confirm your appointment at {time}'.")],
    name: Annotated[Optional[str], typer.Option(help="Campaign name (default: the file's name and the date).")] = None,
    concurrency: Annotated[Optional[int], typer.Option(help="Simultaneous calls ([campaign] concurrency).")] = None,
    hours: Annotated[Optional[str], typer.Option(help="Calling hours HH:MM-HH:MM ([campaign] hours).")] = None,
    timezone: Annotated[Optional[str], typer.Option(help="IANA time zone of the hours (default: [job] timezone).")] = None,
    retries: Annotated[Optional[int], typer.Option(help="Extra attempts for busy / no answer.")] = None,
    retry_after: Annotated[Optional[str], typer.Option(help="Wait before a retry: 30m, 2h, 90s.")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Check the file and print the plan; dial nobody.")] = False,
    config: ConfigOption = None,
) -> None:
    """Call everyone on the list for the goal, within the calling hours; resumable after a crash."""
    from brain.outbound import OutboundTask
    from telephony.campaign.contacts import ContactListError, load_contacts

    settings = _settings(config)
    options = _options(settings, concurrency, hours, timezone, retries, retry_after)
    dial_host = settings.sip.registrar or None
    try:
        contact_list = load_contacts(contacts, goal, dial_host)
    except ContactListError as exc:
        raise _fail(str(exc)) from exc
    for problem in contact_list.problems:
        typer.echo(f"{contacts.name}: {problem} (skipped)", err=True)
    if not contact_list.contacts:
        raise _fail(f"{contacts}: no contact to call")
    name = name or f"{contacts.stem}-{datetime.now():%Y%m%d-%H%M}"
    if dry_run:
        opens = options.hours.next_open(datetime.now().astimezone())
        typer.echo(f"campaign {name} (dry run: nobody is called)")
        typer.echo(f"  {len(contact_list.contacts)} contact(s) to call, {len(contact_list.problems)} row(s) skipped; "
                   f"number column: {contact_list.number_column}")
        typer.echo(f"  {_describe(options)}")
        typer.echo(f"  first calls: {opens:%Y-%m-%d %H:%M} {options.hours.zone.key}"
                   + (" (now)" if options.hours.is_open(datetime.now().astimezone()) else " (when the hours open)"))
        for index, contact in enumerate(contact_list.contacts):
            at = opens + timedelta(seconds=(index // options.concurrency) * ESTIMATED_CALL_S)
            purpose = OutboundTask(goal, contact.variables).purpose
            typer.echo(f"  line {contact.line:<4} ~{at:%H:%M}  {contact.uri}  calling to {purpose}")
        return
    store = _store(settings)
    from telephony.campaign.store import CampaignError

    option_record = {"concurrency": options.concurrency, "hours": f"{options.hours.start:%H:%M}-{options.hours.end:%H:%M}",
                     "timezone": options.hours.zone.key, "retries": options.retries,
                     "retry_after_s": options.retry_after_s, "skipped_rows": [str(p) for p in contact_list.problems]}
    try:
        store.create(name, goal, str(contacts.resolve()), option_record, contact_list.contacts)
    except CampaignError as exc:
        raise _fail(str(exc)) from exc
    typer.echo(f"campaign {name}: {len(contact_list.contacts)} contact(s); {_describe(options)}")
    typer.echo(f"  after an interruption: employai campaign resume {name}")
    _run(settings, store, name, options)


@campaign_app.command("resume")
def campaign_resume(
    name: Annotated[str, typer.Argument(help="The campaign's name (employai campaign list).")],
    concurrency: Annotated[Optional[int], typer.Option(help="Change the number of simultaneous calls.")] = None,
    config: ConfigOption = None,
) -> None:
    """Continue a stopped or crashed campaign: nobody is called twice for one attempt, nobody is skipped."""
    settings = _settings(config)
    store = _store(settings)
    campaign = _campaign(store, name)
    saved = campaign.options
    options = _options(settings, concurrency or saved["concurrency"], saved["hours"], saved["timezone"],
                       saved["retries"], float(saved["retry_after_s"]))
    recovered = store.recover(name, time.time())
    if any(recovered.values()):
        typer.echo(f"campaign {name}: calls cut off by the interruption: {recovered['answered']} answered "
                   f"(done), {recovered['retry']} not answered yet (called again)")
    if store.unfinished(name) == 0:
        typer.echo(f"campaign {name} is finished; nothing to resume")
        _print_counts(store.counts(name))
        return
    _run(settings, store, name, options)


def _run(settings: Settings, store, name: str, options) -> None:
    from telephony.campaign.runner import CampaignRunner

    report = _start(settings)
    service = report.service
    if not report.ok:
        if service is not None:
            service.stop()
        raise _fail("self-test failed: " + "; ".join(report.lines()), 1)
    runner = CampaignRunner(store, name, options, lambda uri, task, started: service.board.dial(uri, task, started))
    stops = 0

    def on_signal(*_) -> None:
        nonlocal stops
        stops += 1
        runner.stop()
        if stops == 1:
            typer.echo("stopping: no new calls; calls in progress finish (Ctrl-C again to hang them up)", err=True)
        else:
            service.board.stop(timeout=10)

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, on_signal)
    result: dict[str, dict[str, int]] = {}
    worker = threading.Thread(target=lambda: result.setdefault("counts", runner.run()), name="campaign", daemon=True)
    try:
        worker.start()
        _show_progress(store, name, runner, worker)
    finally:
        service.stop()
    counts = result.get("counts") or store.counts(name)
    typer.echo(f"campaign {name} {'stopped' if runner.stop_event.is_set() else 'finished'}")
    _print_counts(counts)


def _show_progress(store, name: str, runner, worker: threading.Thread) -> None:
    """A live table on a terminal; a line per finished call otherwise (logs, tests)."""
    from rich.console import Console
    from rich.live import Live
    from rich.table import Table

    console = Console()
    if not console.is_terminal:
        seen = 0
        while worker.is_alive():
            worker.join(0.5)
            attempts = [a for a in store.attempts(name) if a["outcome"]]
            for attempt in attempts[seen:]:
                typer.echo(f"line {attempt['line']} {attempt['uri']} attempt {attempt['number']}: {attempt['outcome']}"
                           + (" (goal achieved)" if attempt["goal_achieved"] else ""))
            seen = len(attempts)
            sys.stdout.flush()
        return

    def table() -> Table:
        counts = store.counts(name)
        view = Table(title=f"campaign {name}", show_header=True)
        view.add_column("outcome")
        view.add_column("contacts", justify="right")
        for key, value in sorted(counts.items()):
            view.add_row(key, str(value))
        progress = runner.progress
        for worker_name, uri in sorted(progress.in_flight.items()):
            view.add_row(f"[cyan]{worker_name} on the phone", uri)
        if progress.waiting_until is not None:
            view.add_row("[yellow]outside the calling hours", f"next call {progress.waiting_until:%a %H:%M}")
        for line in progress.last:
            view.add_row("[dim]recent", line)
        return view

    with Live(table(), console=console, refresh_per_second=2) as live:
        while worker.is_alive():
            worker.join(0.5)
            live.update(table())


def _print_counts(counts: dict[str, int]) -> None:
    from telephony.campaign.runner import OUTCOMES

    order = [*OUTCOMES, "pending", "dialing", "goal_achieved", "attempts"]
    for key in order + sorted(k for k in counts if k not in order):
        if counts.get(key):
            typer.echo(f"  {key:<15} {counts[key]}")


@campaign_app.command("status")
def campaign_status(
    name: Annotated[str, typer.Argument(help="The campaign's name.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the counts as JSON.")] = False,
    config: ConfigOption = None,
) -> None:
    """Counts by outcome: how many answered, left a voicemail, were busy, are still to call."""
    store = _store(_settings(config))
    campaign = _campaign(store, name)
    counts = store.counts(name)
    if as_json:
        typer.echo(json.dumps({"name": name, "status": campaign.status, "goal": campaign.goal, "counts": counts}))
        return
    typer.echo(f"campaign {name} ({campaign.status}): {campaign.goal}")
    _print_counts(counts)


@campaign_app.command("export")
def campaign_export(
    name: Annotated[str, typer.Argument(help="The campaign's name.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="CSV file to write.")],
    config: ConfigOption = None,
) -> None:
    """One row per contact: their columns, the outcome, attempts, goal achieved, summary, recording."""
    store = _store(_settings(config))
    _campaign(store, name)
    rows = store.contacts(name)
    with output.open("w", newline="") as handle:
        write_results(rows, handle)
    typer.echo(f"{len(rows)} contact(s) written to {output}")


@campaign_app.command("list")
def campaign_list(config: ConfigOption = None) -> None:
    """Every campaign: name, status, counts."""
    store = _store(_settings(config))
    campaigns = store.campaigns()
    for campaign in campaigns:
        counts = store.counts(campaign.name)
        done = sum(v for k, v in counts.items() if k not in ("pending", "dialing", "goal_achieved", "attempts"))
        total = done + counts.get("pending", 0) + counts.get("dialing", 0)
        typer.echo(f"{campaign.name:<32} {campaign.status:<9} {done}/{total} done, "
                   f"{counts.get('goal_achieved', 0)} goal(s) achieved")
    if not campaigns:
        typer.echo("no campaigns yet")
