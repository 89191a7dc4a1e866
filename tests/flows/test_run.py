"""`hotline run` (what `make run` calls): serves the hotline, prints its URLs, and Ctrl-C stops everything."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

from twilio.request_validator import RequestValidator

from tests.support.processes import free_port


def test_run_serves_prints_urls_and_stops_everything_on_ctrl_c(tmp_path: Path, twiml_check) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HOTLINE_", "TWILIO_"))}
    env["HOTLINE_DATA_DIR"] = str(tmp_path)
    proc = subprocess.Popen([sys.executable, "-m", "hotline.cli", "run", "--port", str(port)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, start_new_session=True)
    out: list[str] = []
    try:
        for line in proc.stdout:  # blocks on the child's own output: the banner is the readiness event
            out.append(line)
            if "Stores" in line:
                break
        text = "".join(out)
        base = f"http://127.0.0.1:{port}"
        assert f"POST {base}/voice/incoming" in text and f"{base}/api/openapi.json" in text
        assert "annual_premium" in text and "supervisor" in text  # demo data was seeded and printed
        # Offline, the demo agents' devices ring until someone answers: in the console, or at a terminal agent.
        phone = ("Terminal phone         hotline call   (answer it in the agent console, or in another terminal: "
                 "hotline agent --login agent1 --password agent1-pass)")
        assert phone in text

        token = (tmp_path / "offline_auth_token").read_text().strip()
        params = {"CallSid": "CA" + "9" * 32, "From": "+8613800138002", "To": "+864001234567", "CallStatus": "ringing"}
        req = urllib.request.Request(
            f"{base}/voice/incoming",
            data=urllib.parse.urlencode(params).encode(),
            headers={"X-Twilio-Signature": RequestValidator(token).compute_signature(f"{base}/voice/incoming", params)},
        )
        body = urllib.request.urlopen(req, timeout=10).read().decode()
        twiml_check(body)
        assert "<Say" in body
    finally:
        os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C in the terminal sends to the whole group
        proc.wait(timeout=30)
    redis_pid = tmp_path / "redis" / "redis.pid"
    leftovers = subprocess.run(["pgrep", "-f", str(tmp_path)], capture_output=True, text=True).stdout.split()
    assert leftovers == [], f"processes left running: {leftovers}"
    assert not redis_pid.exists() or not Path(f"/proc/{redis_pid.read_text().strip()}").exists()
