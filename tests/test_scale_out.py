"""Scale-out on existing engines: two ``employai serve`` workers behind a Kamailio hunt group, one
OpenAI-compatible inference server (``python -m llama_cpp.server``) and one PostgreSQL + pgvector.

The same caller phones twice; Kamailio's dispatcher (round robin) gives each call to the other
worker, and the second worker greets the caller by the name the first one stored.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path


from memory.postgres_store import PostgresStore
from sip_peers import Kamailio, WireCaller, free_port

REPO = Path(__file__).resolve().parent.parent
RATE = 8000

HUNT_GROUP_CFG = r"""#!KAMAILIO
debug=2
log_stderror=yes
fork=yes
children=2
run_dir="@RUN_DIR@"
listen=udp:127.0.0.1:@PORT@
auto_aliases=no

mpath="@MPATH@"
loadmodule "tm.so"
loadmodule "sl.so"
loadmodule "rr.so"
loadmodule "pv.so"
loadmodule "maxfwd.so"
loadmodule "textops.so"
loadmodule "siputils.so"
loadmodule "xlog.so"
loadmodule "dispatcher.so"

modparam("dispatcher", "list_file", "@LIST@")

request_route {
    xlog("L_NOTICE", "KAM REQ $rm $ru ci=$ci from=$si:$sp\n");
    if (!mf_process_maxfwd_header("10")) { sl_send_reply("483", "Too Many Hops"); exit; }
    if (has_totag()) {
        if (loose_route() || (is_method("ACK") && t_check_trans())) { route(RELAY); }
        sl_send_reply("404", "No such dialog"); exit;
    }
    if (is_method("CANCEL")) { if (t_check_trans()) route(RELAY); exit; }
    t_check_trans();
    if (is_method("OPTIONS") && uri == myself && $rU == $null) { sl_send_reply("200", "OK"); exit; }
    if (is_method("INVITE")) {
        record_route();
        if (!ds_select_dst("1", "4")) { sl_send_reply("503", "No worker"); exit; }  # 4: round robin
        xlog("L_NOTICE", "KAM HUNT ci=$ci to=$du\n");
    }
    route(RELAY);
}

route[RELAY] {
    if (!t_relay()) { sl_reply_error(); }
    exit;
}
"""


class Worker:
    """One ``employai serve`` process with its own config file, data folder and SIP port."""

    def __init__(self, workdir: Path, name: str, database: str, inference: str, rtp_low: int) -> None:
        self.port = free_port()
        self.dir = workdir / name
        self.dir.mkdir()
        config = self.dir / "employai.toml"
        config.write_text(f"""[service]
data_dir = "{self.dir / 'data'}"
metrics_address = "127.0.0.1:0"

[console]
address = "127.0.0.1:0"

[llm]
backend = "openai"
base_url = "{inference}"
n_ctx = 2048

[memory]
store = "postgresql"

[sip]
port = {self.port}
rtp_port_low = {rtp_low}
rtp_port_high = {rtp_low + 999}
""")
        env = {**os.environ, "EMPLOYAI_CONFIG": str(config), "EMPLOYAI_MEMORY__URL": database,
               "PYTHONUNBUFFERED": "1"}
        self.log = self.dir / "serve.log"
        self._out = self.log.open("w")
        self.proc = subprocess.Popen([sys.executable, "-m", "telephony.cli", "serve"], cwd=REPO, env=env,
                                     stdout=self._out, stderr=subprocess.STDOUT)

    def wait_ready(self, timeout: float = 180) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, self.text()[-3000:]
            if "Serving; press Ctrl-C to stop." in self.text():
                return
            time.sleep(0.3)
        raise AssertionError(f"worker never ready:\n{self.text()[-3000:]}")

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self._out.close()


def _say(caller: WireCaller, voice, text: str) -> None:
    audio = voice.synthesize(text, RATE)
    caller.wait_sent(caller.say(audio) + len(audio) // 160 - 1)


def test_two_workers_share_one_memory_and_one_model_behind_a_hunt_group(tmp_path, postgres_url, llama_server,
                                                                        voice):
    workers = [Worker(tmp_path, f"worker{n}", postgres_url, llama_server, 34000 + 1000 * n) for n in (1, 2)]
    hunt = tmp_path / "dispatcher.list"
    hunt.write_text("".join(f"1 sip:127.0.0.1:{w.port}\n" for w in workers))
    kamailio = Kamailio(tmp_path, HUNT_GROUP_CFG.replace("@LIST@", str(hunt)))
    try:
        threads = [threading.Thread(target=w.wait_ready) for w in workers]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        for w in workers:
            w.wait_ready(timeout=1)  # raises here, with the log, if one failed
        kamailio.start()

        first = WireCaller(("127.0.0.1", kamailio.port), user="maria")
        first.dial()
        first.wait_quiet(after=0.0)
        _say(first, voice, "Hi, my name is Carol Jensen.")
        first.wait_quiet(after=time.monotonic() - 0.5, timeout=20)
        first.hang_up()
        first.close()

        store = PostgresStore(postgres_url)
        deadline = time.monotonic() + 60  # post-call work (what to remember) runs after BYE
        known = ""
        while time.monotonic() < deadline and not re.search(r"carol|jensen", known):
            block = store.get_block("sip:maria@127.0.0.1", "human")
            known = block.value.lower() if block else ""
            time.sleep(0.5)
        assert re.search(r"carol|jensen", known), known

        second = WireCaller(("127.0.0.1", kamailio.port), user="maria")
        second.dial()
        second.wait_quiet(after=0.0)
        second.hang_up()
        second.close()

        served = {}
        for call in (first, second):
            [line] = kamailio.events(f"^HUNT ci={re.escape(call.call_id)} ")
            served[call.call_id] = line.rsplit(":", 1)[1]
        assert served[first.call_id] != served[second.call_id], served  # one call each
        conversations = store.conversations("sip:maria@127.0.0.1")
        assert len(conversations) == 2
        greeting = store.messages(min(conversations, key=lambda c: -c.id).id)[0].content.lower()
        assert re.search(r"carol|jensen", greeting), greeting  # worker 2 knew what worker 1 stored
        store.close()
    finally:
        kamailio.stop()
        for w in workers:
            w.stop()
