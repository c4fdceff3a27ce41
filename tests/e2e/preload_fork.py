"""What `guardrail serve`'s master and a worker do with the live state, in one small process.

    python -m tests.e2e.preload_fork KUBECONFIG NAMESPACE

As the gunicorn master: list the cluster (`LiveState.preload`, no thread started), print
`listed`, and wait for a line on stdin (the test changes the cluster meanwhile). Then fork, as
gunicorn forks a worker; the child takes its own client, resumes the watches from the master's
lists, waits for its sync, and prints one JSON line: whether it synced and the names of the
policies it holds in NAMESPACE once it holds one called `late` (or after 30 s).
"""

from __future__ import annotations

import json
import os
import sys
import time

from webhook.kube import KubeClient
from webhook.state.live import LiveState


def main(kubeconfig: str, namespace: str) -> int:
    state = LiveState(KubeClient(kubeconfig))
    state.preload()
    print("listed", flush=True)
    sys.stdin.readline()
    pid = os.fork()
    if pid == 0:
        state.forked(KubeClient(kubeconfig))
        state.start()
        synced = state.wait_synced(30)
        deadline = time.monotonic() + 30
        names: list[str] = []
        while time.monotonic() < deadline:
            names = sorted(str(p["metadata"]["name"]) for p in state.policies_in(namespace))
            if "late" in names:
                break
            time.sleep(0.1)
        print(json.dumps({"synced": synced, "policies": names}), flush=True)
        os._exit(0)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
