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
<a href="/messages">Messages</a><a href="/campaigns">Campaigns</a><a href="/callers">Callers</a><a href="/job">The job</a>
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
<th>Voice to voice per turn</th><th></th></tr></thead><tbody>
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
    const latencies = c.turns.map(t => t.voice_to_voice_ms).filter(ms => ms != null);
    const actions = document.createElement("td"); actions.append(document.querySelector("#actions").content.cloneNode(true));
    const id = encodeURIComponent(c.call_id);
    actions.querySelector(".hangup").action = "/live/" + id + "/hangup"; actions.querySelector(".transfer").action = "/live/" + id + "/transfer";
    tr.append(cell(c.remote), cell(c.direction), cell(c.duration_s + " s"), cell(c.state), said,
              cell(latencies.length ? latencies.join(", ") + " ms" : ""), actions);
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
<br><span class="muted">Stereo: caller left, agent right.</span></p>
<p>Caller only <audio controls preload="none" src="/calls/{{ call.id }}/recording.wav?side=caller"></audio>
Agent only <audio controls preload="none" src="/calls/{{ call.id }}/recording.wav?side=agent"></audio></p>{% endif %}
<h2>Latency per turn</h2>{{ chart | safe }}
<h2>Transcript</h2><table><tbody>
{% for m in call.messages %}<tr class="{{ m.role }}"><td>{{ m.role }}{% if m.name %} ({{ m.name }}){% endif %}</td><td>{{ m.text }}</td></tr>{% endfor %}
</tbody></table>
<h2>Turns</h2><table><thead><tr><th>Caller</th><th>Agent</th><th>Tools</th><th>Timings</th></tr></thead><tbody>
{% for t in call.turns %}<tr><td>{{ t.caller }}</td><td>{{ t.agent }}{% if t.interrupted %} <em>(interrupted)</em>{% endif %}</td>
<td>{{ t.tools | join(", ") }}</td><td class="muted">{% for k, v in t.timings.items() %}{{ k }}={{ v }} {% endfor %}</td></tr>{% endfor %}
</tbody></table>{% endblock %}"""

MESSAGES = """{% extends "base.html" %}{% block title %}Messages{% endblock %}{% block main %}
<h1>Messages for staff</h1>
<p>{% if show_all %}<a href="/messages">Open only</a>{% else %}<a href="/messages?all=1">Show all</a>{% endif %}</p>
<table><thead><tr><th>When</th><th>For</th><th>From</th><th>Message</th><th>Call back</th><th></th></tr></thead><tbody>
{% for m in messages %}<tr><td>{{ when(m.created_at) }}</td><td>{{ m.for_whom }}</td><td>{{ m.caller }}</td><td>{{ m.text }}</td>
<td>{{ m.callback_number or "" }}</td><td>{% if m.done %}done{% else %}<form method="post" action="/messages/{{ m.id }}/done">
<input type="hidden" name="csrf" value="{{ csrf }}"><button>Mark as done</button></form>{% endif %}</td></tr>
{% else %}<tr><td colspan="6" class="muted">No messages.</td></tr>{% endfor %}</tbody></table>{% endblock %}"""

CAMPAIGNS = """{% extends "base.html" %}{% block title %}Campaigns{% endblock %}{% block main %}
<h1>Campaigns</h1><table><thead><tr><th>Name</th><th>Status</th><th>Goal</th><th>Outcomes</th></tr></thead><tbody>
{% for c in campaigns %}<tr><td><a href="/campaigns/{{ c.name | urlencode }}">{{ c.name }}</a></td><td>{{ c.status }}</td><td>{{ c.goal }}</td>
<td>{% for k, v in c.counts.items() %}{{ k }} {{ v }}{% if not loop.last %} · {% endif %}{% endfor %}</td></tr>
{% else %}<tr><td colspan="4" class="muted">No campaigns yet: <code>employai campaign run CONTACTS.csv --goal "…"</code></td></tr>{% endfor %}
</tbody></table>{% endblock %}"""

CAMPAIGN = """{% extends "base.html" %}{% block title %}{{ campaign.name }}{% endblock %}{% block main %}
<h1>Campaign {{ campaign.name }}</h1><p>{{ campaign.goal }} · {{ campaign.status }} ·
<a href="/campaigns/{{ campaign.name | urlencode }}/export.csv">Export CSV</a></p>
<p>{% for k, v in counts.items() %}<strong>{{ k }}</strong> {{ v }}{% if not loop.last %} · {% endif %}{% endfor %}</p>
<table><thead><tr><th>Line</th><th>Contact</th><th>Outcome</th><th>Attempts</th><th>Goal</th><th>Summary</th></tr></thead><tbody>
{% for c in contacts %}<tr><td>{{ c.line }}</td><td>{{ c.uri }}</td><td>{{ c.outcome if c.state == "done" else c.state }}</td>
<td>{{ c.attempts }}</td><td>{{ {1: "achieved", 0: "not achieved"}.get(c.goal_achieved, "") }}</td>
<td>{{ c.summary or "" }}{% if c.conversation_id %} <a href="/calls/{{ c.conversation_id }}">call</a>{% endif %}</td></tr>{% endfor %}
</tbody></table>
{% if campaign.status == "running" %}<p class="muted">Running: this page refreshes every 5 s.</p>
<script>setTimeout(() => location.reload(), 5000);</script>{% endif %}{% endblock %}"""

CALLERS = """{% extends "base.html" %}{% block title %}Callers{% endblock %}{% block main %}
<h1>Callers</h1><form method="get"><input name="q" value="{{ q }}" placeholder="number or address"><button>Search</button></form>
<table><thead><tr><th>Caller</th><th>Last call</th><th>Summary</th></tr></thead><tbody>
{% for c in callers %}<tr><td><a href="/callers/{{ c.caller | urlencode }}">{{ c.caller }}</a></td><td>{{ when(c.started_at) }}</td>
<td>{{ c.summary or "" }}</td></tr>{% else %}<tr><td colspan="3" class="muted">Nobody yet.</td></tr>{% endfor %}</tbody></table>{% endblock %}"""

CALLER = """{% extends "base.html" %}{% block title %}{{ key }}{% endblock %}{% block main %}
<h1>{{ key }}</h1><h2>What the employee remembers</h2>
<form method="post" action="/callers/{{ key | urlencode }}/memory"><input type="hidden" name="csrf" value="{{ csrf }}">
<textarea name="memory" rows="6" cols="80" maxlength="{{ limit }}">{{ memory }}</textarea><br><button>Save</button></form>
<h2>Past calls</h2><table><tbody>{% for c in conversations %}<tr><td><a href="/calls/{{ c.id }}">{{ when(c.started_at) }}</a></td>
<td>{{ c.summary or "" }}</td></tr>{% else %}<tr><td class="muted">None.</td></tr>{% endfor %}</tbody></table>
<h2>Right to erasure</h2><form method="post" action="/callers/{{ key | urlencode }}/erase"
onsubmit="return confirm('Erase everything stored about this caller?')"><input type="hidden" name="csrf" value="{{ csrf }}">
<button>Erase this caller's memory, calls and messages</button></form>{% endblock %}"""

JOB = """{% extends "base.html" %}{% block title %}The job{% endblock %}{% block main %}
<h1>The job</h1>{% if uploaded %}<p role="status">{{ uploaded }} ingested.</p>{% endif %}
<h2>Company documents</h2><ul>{% for name, n in sources.items() %}<li>{{ name }} ({{ n }} passages)</li>
{% else %}<li class="muted">None yet.</li>{% endfor %}</ul>
<form method="post" action="/job/documents" enctype="multipart/form-data"><input type="hidden" name="csrf" value="{{ csrf }}">
<input type="file" name="document" accept=".md,.markdown,.txt,.text,.html,.htm,.csv,.pdf,.docx" required> <button>Upload and ingest</button></form>
<h2>Effective configuration</h2><p class="muted">Secrets are masked. Change it in employai.toml or the environment.</p>
<pre>{{ config }}</pre>{% endblock %}"""

TEMPLATES = {"messages.html": MESSAGES, "campaigns.html": CAMPAIGNS, "campaign.html": CAMPAIGN, "callers.html": CALLERS,
             "caller.html": CALLER, "job.html": JOB,
             "base.html": BASE, "login.html": LOGIN, "live.html": LIVE, "calls.html": CALLS, "call.html": CALL}
