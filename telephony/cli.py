"""The ``employai`` command line."""

from __future__ import annotations

import json
import signal
import sys
import threading
from pathlib import Path
from typing import Annotated, Optional

import typer

from config import ConfigError, Settings, render_toml
from telephony.cli_support import ConfigOption, _fail, _models_dir, _settings, _start

app = typer.Typer(help="Employai: an AI employee you can phone, on your own hardware.", no_args_is_help=True)
config_app = typer.Typer(help="Inspect the configuration.", no_args_is_help=True)
app.add_typer(config_app, name="config")
calls_app = typer.Typer(help="Past calls: transcripts, tools, timings, recordings.", no_args_is_help=True)
app.add_typer(calls_app, name="calls")
memory_app = typer.Typer(help="The employee's memory: callers, past conversations, company documents.", no_args_is_help=True)
app.add_typer(memory_app, name="memory")


@config_app.command("show")
def config_show(config: ConfigOption = None) -> None:
    """Print the effective configuration (file + environment + defaults) as TOML, secrets masked."""
    typer.echo(render_toml(_settings(config)), nl=False)


@app.command()
def transcribe(
    file: Annotated[Path, typer.Argument(help="Audio file (WAV, or anything FFmpeg/PyAV decodes).")],
    telephone: Annotated[bool, typer.Option("--telephone", help="Pass the audio through 8 kHz G.711 first.")] = False,
    codec: Annotated[str, typer.Option(help="G.711 law for --telephone: PCMU (µ-law) or PCMA (A-law).")] = "PCMU",
    as_json: Annotated[bool, typer.Option("--json", help='Print {"text": ..., "seconds": ...}.')] = False,
    config: ConfigOption = None,
) -> None:
    """Transcribe an audio file with the configured Whisper model."""
    from config.models import ModelNotFoundError
    from speech.audio import STT_RATE, AudioFormatError, read_audio
    from speech.resample import resample, telephone_path
    from speech.stt import WhisperSTT

    settings = _settings(config)
    if codec not in ("PCMU", "PCMA"):
        raise _fail(f"--codec must be PCMU or PCMA, got {codec!r}")
    try:
        audio = read_audio(file)
        stt = WhisperSTT.from_settings(settings.stt, _models_dir(settings))
    except (AudioFormatError, ModelNotFoundError) as exc:
        raise _fail(str(exc)) from exc
    samples = resample(audio.samples, audio.rate, STT_RATE)
    if telephone:
        samples = telephone_path(samples, STT_RATE, codec)
    result = stt.transcribe(samples)
    if as_json:
        typer.echo(json.dumps({"text": result.text, "seconds": round(result.compute_seconds, 3)}))
    else:
        typer.echo(result.text)


@app.command()
def say(
    text: Annotated[str, typer.Argument(help="What to say.")],
    output: Annotated[Path, typer.Option("-o", "--output", help="WAV file to write.")],
    rate: Annotated[int, typer.Option(help="Sample rate of the WAV (8000 = telephone).")] = 8000,
    config: ConfigOption = None,
) -> None:
    """Speak TEXT with the configured Piper voice into a WAV file."""
    from config.models import ModelNotFoundError
    from speech.audio import write_wav
    from speech.tts import PiperTTS

    settings = _settings(config)
    if not 4000 <= rate <= 48000:
        raise _fail(f"--rate must be between 4000 and 48000 Hz, got {rate}")
    try:
        tts = PiperTTS.from_settings(settings.tts)
    except ModelNotFoundError as exc:
        raise _fail(str(exc)) from exc
    samples = tts.synthesize(text, rate)
    if len(samples) == 0:
        raise _fail("nothing to say: the text has no speakable words")
    try:
        write_wav(output, samples, rate)
    except OSError as exc:
        raise _fail(f"{output}: {exc.strerror}") from exc
    typer.echo(f"{output}: {len(samples) / rate:.2f} s at {rate} Hz")


@app.command()
def serve(
    config: ConfigOption = None,
    check: Annotated[bool, typer.Option("--check", help="Load and self-test, then exit (0 = ready).")] = False,
) -> None:
    """Run the service: load the models once, self-test the speech path, then serve until stopped."""
    settings = _settings(config)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    report = _start(settings)
    service = report.service
    if report.ok and not check and settings.console.enabled and service is not None:
        try:
            report.notes.append(service.start_console())
        except OSError as exc:
            service.stop()
            raise _fail(f"operator console on {settings.console.address}: {exc}") from exc
    for line in report.lines():
        typer.echo(line)
    sys.stdout.flush()
    try:
        if check or not report.ok:
            raise typer.Exit(0 if report.ok else 1)
        typer.echo("Serving; press Ctrl-C to stop.")
        sys.stdout.flush()
        while not stop.wait(1.0):
            pass
        typer.echo("Stopping: saying goodbye on open calls.")
    finally:
        if service is not None:
            service.stop()
    typer.echo("Stopped.")


@app.command()
def call(
    uri: Annotated[str, typer.Argument(help="Who to call: sip:user@host[:port] (or an extension when registered).")],
    config: ConfigOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the outcome as JSON.")] = False,
) -> None:
    """Place one outbound call with the employee and wait until it is over."""
    from dataclasses import asdict

    settings = _settings(config)
    report = _start(settings)
    service = report.service
    try:
        if not report.ok:
            raise _fail("self-test failed: " + "; ".join(report.lines()), 1)
        if "@" not in uri and not uri.startswith(("sip:", "sips:", "tel:")):
            host = settings.sip.registrar
            if not host:
                raise _fail(f"{uri!r} is not a SIP URI and no registrar is configured to resolve it")
            uri = f"sip:{uri}@{host}"
        typer.echo(f"calling {uri} ...", err=True)
        outcome = service.board.dial(uri)
    finally:
        service.stop()
    if as_json:
        typer.echo(json.dumps(asdict(outcome), indent=2))
    else:
        typer.echo(f"{outcome.status} (SIP {outcome.sip_code}), {outcome.duration_s:.0f} s, {outcome.turns} turn(s)"
                   + (f", conversation #{outcome.conversation_id}" if outcome.conversation_id else ""))
    raise typer.Exit(0 if outcome.status == "completed" else 1)


def _memory(settings: Settings):
    from config.models import ModelNotFoundError
    from memory.service import open_memory
    from memory.store import StoreError

    try:
        return open_memory(settings.memory_path, settings.memory)
    except (ModelNotFoundError, StoreError) as exc:
        raise _fail(str(exc)) from exc


def _started(conversation) -> str:
    """When a call or chat started, as the call lists show it."""
    from datetime import datetime

    return datetime.fromtimestamp(conversation.started_at).strftime("%Y-%m-%d %H:%M")


def _store(settings: Settings):
    from memory.service import open_store
    from memory.store import StoreError

    try:
        return open_store(settings.memory_path, settings.memory)
    except StoreError as exc:
        raise _fail(str(exc)) from exc


@calls_app.command("list")
def calls_list(
    limit: Annotated[int, typer.Option(help="How many, newest first.")] = 20,
    config: ConfigOption = None,
) -> None:
    """Recent calls (and chats): id, when, caller, summary."""
    store = _store(_settings(config))
    rows = store.recent_conversations(limit)
    for conv in rows:
        info = store.call_info(conv.id) or {}
        how = f"{info.get('direction', '')[:3]} {info.get('status', '')}".strip() or conv.channel
        typer.echo(f"#{conv.id:<5} {_started(conv)}  {how:<14} {conv.caller:<24} {conv.summary or ''}")
    if not rows:
        typer.echo("no calls yet")


@calls_app.command("show")
def calls_show(
    call_id: Annotated[int, typer.Argument(help="Call number from `employai calls list`.")],
    config: ConfigOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Everything as one JSON object.")] = False,
) -> None:
    """One call: transcript, tools used, per-turn timings, recording, messages taken."""
    from dataclasses import asdict

    store = _store(_settings(config))
    conv = store.conversation(call_id)
    if conv is None:
        raise _fail(f"no call #{call_id}")
    info = store.call_info(call_id)
    if as_json:
        typer.echo(json.dumps({
            "conversation": asdict(conv), "call": info, "recording": store.recording(call_id),
            "transcript": [{"role": m.role, "name": m.name, "content": m.content} for m in store.messages(call_id)],
            "turns": [asdict(t) for t in store.turns(call_id)],
        }, indent=2, default=str))
        return
    typer.echo(f"call #{conv.id} from {conv.caller} ({conv.channel})")
    if info:
        typer.echo(f"line: {info.get('direction')} {info.get('remote')}, {info.get('status')} (SIP {info.get('sip_code')}), "
                   f"ended by {info.get('ended_by') or '?'} after {info.get('duration_s', 0):.0f} s, codec {info.get('codec')}"
                   + (f", transferred to {info['transfer']}" if info.get("transfer") else ""))
    if conv.summary:
        typer.echo(f"summary: {conv.summary}")
    recording = store.recording(call_id)
    if recording:
        typer.echo(f"recording: {recording} (left: caller, right: agent)")
    typer.echo("transcript:")
    for message in store.messages(call_id):
        who = {"user": "caller", "assistant": "agent"}.get(message.role, f"{message.role}:{message.name or ''}")
        typer.echo(f"  {who:<8} {message.content}")
    turns = store.turns(call_id)
    if turns:
        typer.echo("turn timings (ms):")
        for number, turn in enumerate(turns, 1):
            t = turn.timings
            typer.echo(f"  {number}. STT final {t.get('stt_final_ms')}, first token {t.get('first_token_ms')}, "
                       f"first audio {t.get('first_audio_ms')}, voice-to-voice {t.get('voice_to_voice_ms')}"
                       + (f", tools: {', '.join(turn.tools)}" if turn.tools else "")
                       + (" [interrupted]" if turn.interrupted else ""))
    taken = [m for m in store.staff_messages(open_only=False) if m.conversation_id == call_id]
    for message in taken:
        typer.echo(f"message for {message.for_whom}: {message.text} (call back {message.callback_number})")


@memory_app.command("show")
def memory_show(
    caller: Annotated[str, typer.Argument(help="Caller number or SIP URI.")],
    config: ConfigOption = None,
) -> None:
    """Print what the employee remembers about CALLER: core memory and past conversations."""
    memory = _memory(_settings(config)).for_caller(caller)
    typer.echo(f"caller: {memory.key}")
    typer.echo("core memory:")
    typer.echo("  " + (memory.human().replace("\n", "\n  ") or "(nothing yet)"))
    typer.echo("conversations:")
    past = memory.past_conversations(10)
    for conv in past:
        typer.echo(f"  #{conv.id} {_started(conv)} {conv.channel}: {conv.summary or '(no summary)'}")
    if not past:
        typer.echo("  (none)")


@memory_app.command("search")
def memory_search(
    query: Annotated[str, typer.Argument(help="Words or a question.")],
    caller: Annotated[Optional[str], typer.Option("--caller", help="Search this caller's conversations too.")] = None,
    limit: Annotated[int, typer.Option(help="Results per kind.")] = 5,
    config: ConfigOption = None,
) -> None:
    """Search the company documents and, with --caller, that caller's past messages and notes."""
    service = _memory(_settings(config))
    if caller:
        memory = service.for_caller(caller)
        for hit in memory.conversation_search(query, limit):
            typer.echo(f"[message #{hit.message.conversation_id} {hit.message.role}] {hit.message.content}")
        passages = memory.archival_memory_search(query, limit)
    else:
        passages = service.search_knowledge(query, limit)
    for passage in passages:
        typer.echo(f"[{passage.source}] {' '.join(passage.text.split())[:300]}")


@memory_app.command("migrate")
def memory_migrate(
    source: Annotated[str, typer.Option("--from", help="sqlite:PATH of the memory file to copy.")],
    target: Annotated[str, typer.Option("--to", help="postgresql://user:password@host/db (an empty database).")],
) -> None:
    """Copy a SQLite memory into PostgreSQL without loss: ids, embeddings, calls; counts and checksums compared."""
    from memory.migrate import migrate_sqlite_to_postgres
    from memory.store import StoreError

    if not source.startswith("sqlite:"):
        raise _fail("--from must be sqlite:PATH")
    if not target.startswith(("postgresql://", "postgres://")):
        raise _fail("--to must be a postgresql:// URL")
    try:
        reports = migrate_sqlite_to_postgres(Path(source.removeprefix("sqlite:")).expanduser(), target)
    except StoreError as exc:
        raise _fail(str(exc), 1) from exc
    for report in reports:
        typer.echo(f"{report.table:<15} {report.rows:>8} rows  sha256 {report.checksum[:16]}  identical")
    typer.echo("copied; set [memory] store = \"postgresql\" and EMPLOYAI_MEMORY__URL to use it")


@memory_app.command("ingest")
def memory_ingest(
    folder: Annotated[Path, typer.Argument(help="Folder of company documents (.md .txt .html .csv .pdf .docx).")],
    config: ConfigOption = None,
) -> None:
    """Load company documents into archival memory (re-ingesting a file replaces it)."""
    service = _memory(_settings(config))
    try:
        report = service.ingest(folder)
    except FileNotFoundError as exc:
        raise _fail(str(exc)) from exc
    for read in report.read:
        typer.echo(f"  {read.source}: {read.facts} facts, {read.chunks} chunks" + (f" ({read.note})" if read.note else ""))
    for skipped in report.skipped:
        typer.echo(f"  not read: {skipped}")
    typer.echo(f"ingested {report.files} files: {report.facts} facts, {report.passages} chunks"
               + (f"; {len(report.skipped)} not read" if report.skipped else ""))


@app.command()
def simulate(
    audio_in: Annotated[Path, typer.Argument(help="The caller's side of a call (WAV or any audio file).")],
    output: Annotated[Path, typer.Option("-o", "--output", help="WAV of the agent's side, aligned with the input.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print transcript and per-turn timings as JSON.")] = False,
    caller: Annotated[str, typer.Option("--caller", help="Caller ID to use (memory).")] = "sip:simulator@127.0.0.1",
    config: ConfigOption = None,
) -> None:
    """A whole call from an audio file through the real voice loop (VAD, STT, employee, TTS), at real time."""
    import json as json_module

    from config.models import ModelNotFoundError
    from speech.audio import AudioFormatError
    from telephony.simulate import simulate_call

    settings = _settings(config)
    try:
        result = simulate_call(settings, audio_in, output, caller=caller)
    except (AudioFormatError, ModelNotFoundError) as exc:
        raise _fail(str(exc)) from exc
    if as_json:
        typer.echo(json_module.dumps(result))
        return
    for turn in result["turns"]:
        typer.echo(f"caller: {turn['caller_text']}")
        typer.echo(f"agent:  {turn['agent_text']}  ({turn['voice_to_voice_ms']} ms voice-to-voice)")
    typer.echo(f"{output}: {result['call_seconds']} s of agent audio")


@app.command()
def chat(
    caller: Annotated[str, typer.Option("--caller", help="Who is 'calling' (number or SIP URI): their memory is used.")] = "console",
    config: ConfigOption = None,
) -> None:
    """Talk to the employee in text (no phone): tokens stream, memory persists like a real call."""
    import asyncio

    from brain.employee import Brain, SpeechDelta, ToolUsed, TurnDone
    from brain.line import ConsoleLine

    settings = _settings(config)
    try:
        brain = Brain(settings)
    except ConfigError as exc:
        raise _fail(str(exc)) from exc

    async def run() -> None:
        line = ConsoleLine()
        conversation = brain.conversation(caller, line, channel="chat")
        typer.echo(f"{settings.job.name}: {conversation.greeting()}")
        while not conversation.ended:
            try:
                text = input("you: ").strip()
            except EOFError:
                break
            if not text:
                continue
            typer.echo(f"{settings.job.name}: ", nl=False)
            async for event in conversation.turn(text):
                if isinstance(event, SpeechDelta):
                    typer.echo(event.text, nl=False)
                elif isinstance(event, ToolUsed):
                    typer.echo(f" [{event.name}: {event.result}] ", nl=False)
                elif isinstance(event, TurnDone):
                    typer.echo("")
        post = await conversation.end()
        typer.echo(f"[call summary] {post.summary}")
        for item in post.action_items:
            typer.echo(f"[action item] {item}")
        for fact in post.remembered:
            typer.echo(f"[remembered] {fact}")

    try:
        asyncio.run(run())
    finally:
        brain.close()


def main() -> None:
    app()


from telephony.campaign.cli import campaign_app  # noqa: E402 - its commands use the helpers above

app.add_typer(campaign_app, name="campaign")

if __name__ == "__main__":
    main()
