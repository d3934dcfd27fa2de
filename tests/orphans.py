"""Which processes outlive a killed one: `survivors` runs Python code in a child, kills it once it has
made enough files, and lists every process it started that is still alive after a grace period.

The count is exact: the child runs under a driver process that is a Linux child subreaper
(PR_SET_CHILD_SUBREAPER), so a process orphaned by the kill is re-parented to the driver rather than
to init, and stays among the driver's descendants.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]  # the checkout the child imports mbasr from
_DRIVER = r"""
import ctypes, json, os, signal, subprocess, sys, time
from pathlib import Path

import psutil

a = json.loads(sys.argv[1])
ctypes.CDLL(None).prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER
child = subprocess.Popen([sys.executable, "-c", a["code"]], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
watch = Path(a["watch"])


def made():
    return sum(1 for _ in watch.rglob(a["pattern"])) if watch.exists() else 0


def alive():
    out = []
    for p in psutil.Process().children(recursive=True):
        try:
            if p.status() != psutil.STATUS_ZOMBIE:
                out.append(p)
        except psutil.NoSuchProcess:
            pass
    return out


def reap():
    try:
        while os.waitpid(-1, os.WNOHANG)[0] > 0:
            pass
    except ChildProcessError:
        pass


deadline = time.monotonic() + a["ready_s"]
while child.poll() is None and made() < a["files"] and time.monotonic() < deadline:
    time.sleep(0.05)
report = {"made": made(), "running": len(alive()), "exited_early": child.poll() is not None}
killed = time.monotonic()
child.send_signal(getattr(signal, a["signal"]))
try:
    report["stderr"] = child.communicate(timeout=a["grace_s"])[1].decode(errors="replace")[-2000:]
except subprocess.TimeoutExpired:
    child.kill()
    report["stderr"] = "the killed process itself did not end"
end = time.monotonic() + a["grace_s"]
while True:
    reap()
    left = alive()
    if not left or time.monotonic() > end:
        break
    time.sleep(0.1)
report["seconds"] = round(time.monotonic() - killed, 2)  # from the kill until none was left (or grace)
report["left"] = []
for p in left:
    try:
        report["left"].append(" ".join(p.cmdline())[:200] or p.name())
        p.kill()
    except psutil.NoSuchProcess:
        pass
print(json.dumps(report))
"""


def survivors(
    code: str,
    signal: str,
    watch: Path,
    files: int,
    pattern: str = "*.wav",
    ready_s: float = 60.0,
    grace_s: float = 5.0,
) -> dict:
    """Run `code` in a fresh Python; once `files` files matching `pattern` exist under `watch`, send it
    `signal` ("SIGTERM", "SIGKILL", "SIGINT"); after at most `grace_s` seconds, report
    {"made", "running", "exited_early", "stderr", "left"}: `running` counts the processes alive before
    the kill (the child included), `left` describes those still alive after it (then killed)."""
    args = {
        "code": code,
        "signal": signal,
        "watch": str(watch),
        "files": files,
        "pattern": pattern,
        "ready_s": ready_s,
        "grace_s": grace_s,
    }
    out = subprocess.run(
        [sys.executable, "-c", _DRIVER, json.dumps(args)],
        capture_output=True,
        text=True,
        timeout=ready_s + 3 * grace_s + 30,
        env=os.environ
        | {"PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))},
    )
    if out.returncode != 0:
        raise RuntimeError(f"the process driver failed (rc={out.returncode}): {out.stderr[-2000:]}")
    return json.loads(out.stdout.splitlines()[-1])
