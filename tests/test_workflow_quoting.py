"""The workflow's shell commands quote every path: a work folder and a publish folder whose names hold a
space and a quote reach each program as one argument each (a dry run prints the commands)."""

from __future__ import annotations

import shlex

from test_workflow import _snakemake


def test_paths_with_spaces_and_quotes_stay_whole(tmp_path):
    odd = tmp_path / "my runs 'x'"
    work, publish = odd / "w", odd / "published"
    out = _snakemake("-n", "-p", "--config", f"work_dir={work}", f"publish_to={publish}")
    assert out.returncode == 0, out.stderr[-2000:]
    commands = [
        line.split("Shell command:", 1)[1]
        for line in (out.stdout + out.stderr).splitlines()
        if "Shell command:" in line and line.split("Shell command:", 1)[1].strip() != "None"
    ]
    programs = {w for c in commands for w in ("papermill", "mbasr results", "mbasr publish") if w in c}
    assert programs == {"papermill", "mbasr results", "mbasr publish"}, commands[:3]
    for command in commands:
        words = shlex.split(command)
        broken = [w for w in words if str(tmp_path) in w and not w.startswith(str(odd))]
        assert not broken, f"a path split into several words: {broken} in {command}"
        assert any(w.startswith(str(work)) for w in words), command
