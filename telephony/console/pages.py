"""The console's page templates (Jinja2, autoescaped), kept in code so the package needs no data files."""

BASE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{% block title %}Employai{% endblock %} - {{ company }}</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body { font: 15px/1.4 system-ui, sans-serif; margin: 0; color: #222; }
header { background: #234; color: #fff; padding: .6em 1em; display: flex; gap: 1.5em; align-items: center; }
header a { color: #fff; text-decoration: none; } header form { margin-left: auto; }
main { padding: 1em; max-width: 1100px; }
table { border-collapse: collapse; width: 100%; } td, th { border-bottom: 1px solid #ddd; padding: .35em; text-align: left; vertical-align: top; }
.transcript { font-size: 13px; max-height: 12em; overflow: auto; } .user { color: #036; } .assistant { color: #630; }
.muted { color: #777; } button { cursor: pointer; }
</style></head><body>
<header><strong>Employai</strong>{% if logged_in %}<a href="/">Live calls</a><a href="/calls">Call history</a>
<form method="post" action="/logout"><input type="hidden" name="csrf" value="{{ csrf }}"><button>Log out</button></form>{% endif %}</header>
<main>{% block main %}{% endblock %}</main></body></html>"""

LOGIN = """{% extends "base.html" %}{% block title %}Log in{% endblock %}{% block main %}
<h1>Operator console</h1>
{% if locked %}<p>The console is locked: no password is set. Set <code>[console] password</code> or the
environment variable <code>EMPLOYAI_CONSOLE__PASSWORD</code> and restart <code>employai serve</code>.</p>{% endif %}
{% if error %}<p role="alert">Wrong password.</p>{% endif %}
<form method="post" action="/login"><input type="hidden" name="csrf" value="{{ csrf }}">
<label>Password <input type="password" name="password" autofocus required></label> <button>Log in</button></form>
{% endblock %}"""

LIVE = """{% extends "base.html" %}{% block title %}Live calls{% endblock %}{% block main %}
<h1>Live calls</h1>
<table id="live"><thead><tr><th>Caller</th><th>Direction</th><th>Duration</th><th>State</th><th>Transcript</th>
<th>Last turn</th><th></th></tr></thead><tbody>
{% for c in calls %}<tr><td>{{ c.remote }}</td><td>{{ c.direction }}</td><td>{{ c.duration_s }} s</td><td>{{ c.state }}</td>
<td></td><td></td><td></td></tr>{% else %}<tr><td colspan="7" class="muted">No call right now.</td></tr>{% endfor %}
</tbody></table>
<template id="actions"><form method="post" class="hangup"><input type="hidden" name="csrf" value="{{ csrf }}"><button>Hang up</button></form>
<form method="post" class="transfer"><input type="hidden" name="csrf" value="{{ csrf }}"><select name="target">
{% for t in targets %}<option>{{ t }}</option>{% endfor %}</select><button>Transfer</button></form></template>
<script>
const body = document.querySelector("#live tbody");
function cell(text, cls) { const td = document.createElement("td"); td.textContent = text; if (cls) td.className = cls; return td; }
function render(calls) {
  body.replaceChildren();
  if (!calls.length) { const tr = document.createElement("tr"); const td = cell("No call right now.", "muted"); td.colSpan = 7; tr.append(td); body.append(tr); return; }
  for (const c of calls) {
    const tr = document.createElement("tr"); tr.dataset.callId = c.call_id;
    const said = document.createElement("td"); said.className = "transcript";
    for (const m of c.transcript) { const p = document.createElement("div"); p.className = m.role; p.textContent = (m.role == "user" ? "Caller: " : "Agent: ") + m.text; said.append(p); }
    const last = c.turns.length ? c.turns[c.turns.length - 1] : null;
    const actions = document.createElement("td"); actions.append(document.querySelector("#actions").content.cloneNode(true));
    const id = encodeURIComponent(c.call_id);
    actions.querySelector(".hangup").action = "/live/" + id + "/hangup"; actions.querySelector(".transfer").action = "/live/" + id + "/transfer";
    tr.append(cell(c.remote), cell(c.direction), cell(c.duration_s + " s"), cell(c.state), said,
              cell(last && last.voice_to_voice_ms != null ? last.voice_to_voice_ms + " ms voice to voice" : ""), actions);
    body.append(tr);
  }
}
new EventSource("/events").onmessage = (e) => render(JSON.parse(e.data).calls);
</script>{% endblock %}"""

CALLS = """{% extends "base.html" %}{% block title %}Call history{% endblock %}{% block main %}
<h1>Call history</h1>
<form method="get"><input name="q" value="{{ q }}" placeholder="caller or summary">
<input name="date" value="{{ date }}" placeholder="YYYY-MM-DD"><select name="outcome"><option value="">any outcome</option>
{% for o in ["completed", "voicemail", "busy", "no-answer", "rejected", "failed", "cancelled", "chat"] %}
<option {% if o == outcome %}selected{% endif %}>{{ o }}</option>{% endfor %}</select><button>Filter</button></form>
<table><thead><tr><th>#</th><th>When</th><th>Caller</th><th>Direction</th><th>Outcome</th><th>Summary</th></tr></thead><tbody>
{% for r in rows %}<tr><td><a href="/calls/{{ r.id }}">{{ r.id }}</a></td><td>{{ r.started }}</td><td>{{ r.caller }}</td>
<td>{{ r.direction }}</td><td>{{ r.status }}</td><td>{{ r.summary }}</td></tr>
{% else %}<tr><td colspan="6" class="muted">No calls.</td></tr>{% endfor %}</tbody></table>{% endblock %}"""

CALL = """{% extends "base.html" %}{% block title %}Call {{ call.id }}{% endblock %}{% block main %}
<h1>Call {{ call.id }}: {{ call.caller }}</h1>
<p>{{ call.started }} · {{ call.info.direction or "" }} · {{ call.info.status or "" }}
{% if call.info.duration_s %}· {{ call.info.duration_s }} s{% endif %}{% if call.info.ended_by %} · ended by {{ call.info.ended_by }}{% endif %}</p>
<p>{{ call.summary }}</p>
{% if call.recording %}<p><audio controls preload="metadata" src="/calls/{{ call.id }}/recording.wav"></audio>
<br><span class="muted">Stereo: caller left, agent right.</span></p>{% endif %}
<h2>Latency per turn</h2>{{ chart | safe }}
<h2>Transcript</h2><table><tbody>
{% for m in call.messages %}<tr class="{{ m.role }}"><td>{{ m.role }}{% if m.name %} ({{ m.name }}){% endif %}</td><td>{{ m.text }}</td></tr>{% endfor %}
</tbody></table>
<h2>Turns</h2><table><thead><tr><th>Caller</th><th>Agent</th><th>Tools</th><th>Timings</th></tr></thead><tbody>
{% for t in call.turns %}<tr><td>{{ t.caller }}</td><td>{{ t.agent }}{% if t.interrupted %} <em>(interrupted)</em>{% endif %}</td>
<td>{{ t.tools | join(", ") }}</td><td class="muted">{% for k, v in t.timings.items() %}{{ k }}={{ v }} {% endfor %}</td></tr>{% endfor %}
</tbody></table>{% endblock %}"""

TEMPLATES = {"base.html": BASE, "login.html": LOGIN, "live.html": LIVE, "calls.html": CALLS, "call.html": CALL}
