"""The watcher that ends what a run started (a local Ray cluster) when the run is killed."""

from __future__ import annotations

import subprocess
import sys
import textwrap

from helpers import alive, wait_for

SCRIPT = textwrap.dedent("""
    import subprocess, sys, time
    from microast_video.core import reaper
    older = subprocess.Popen(["sleep", "60"], start_new_session=True)
    reaper.watch_new_children()
    # a child that starts a grandchild and dies a second later, leaving it to init (as a raylet its agents)
    middle = subprocess.Popen(["sh", "-c", "sleep 60 & echo $!; sleep 1"], stdout=subprocess.PIPE, text=True,
                              start_new_session=True)
    orphan = int(middle.stdout.readline())
    middle.wait()
    newer = subprocess.Popen(["sleep", "60"], start_new_session=True)
    print(older.pid, orphan, newer.pid, flush=True)
    time.sleep(60)
""")


def test_a_killed_run_takes_what_it_started_since_the_watch_and_nothing_older():
    proc = subprocess.Popen([sys.executable, "-c", SCRIPT], stdout=subprocess.PIPE, text=True)
    older, orphan, newer = map(int, proc.stdout.readline().split())
    try:
        assert alive(orphan) and alive(newer)
        wait_for(lambda: False, 0.6)  # the watcher notes the processes four times a second
    finally:
        proc.kill()
        proc.wait()
    assert wait_for(lambda: not alive(orphan) and not alive(newer), 10)
    assert alive(older)  # started before the watch: not the watched run's
    subprocess.run(["kill", str(older)], check=True)
