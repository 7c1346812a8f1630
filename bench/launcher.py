"""Start one program, wait for it, and write its own wall time, CPU time and peak RSS to a file.

Usage: `python -I -S bench/launcher.py CAP RESULT_FILE PROGRAM [ARG...]`.

Why a launcher: on Linux a child's `ru_maxrss` starts at its parent's resident size when it
forks (the copied memory map's high-water mark survives `exec` in the process's peak), so a
program started straight from the bench, which holds its servers and libraries, would inherit the
bench's 40-odd MiB. This launcher is a bare interpreter (`-I -S`, only built-in modules), so the
floor under every figure is its own ~9 MiB, below any Python program measured here. It forks the
program into its own process group, kills that group when the cap passes, reaps the program with
`os.wait4` and writes `wall_s status cpu_user cpu_system maxrss_kib capped` on one line.
"""

# Only modules built into the interpreter: every import here raises the RSS floor of every
# measured program (hence try/except rather than contextlib.suppress below).
import os
import signal
import sys
import time


def main() -> None:
    cap = float(sys.argv[1])
    result_path = sys.argv[2]
    argv = sys.argv[3:]
    capped = []
    started = time.monotonic()
    pid = os.fork()
    if pid == 0:  # the program
        try:
            os.setpgid(0, 0)
            os.execvp(argv[0], argv)
        finally:
            os._exit(127)
    try:  # noqa: SIM105  # also here, so that the group exists before the cap can fire
        os.setpgid(pid, pid)
    except OSError:  # the program already exec'd (and did it itself)
        pass

    def kill(_signum: int, _frame: object) -> None:
        capped.append(True)
        try:  # noqa: SIM105
            os.killpg(pid, signal.SIGKILL)
        except OSError:
            pass

    signal.signal(signal.SIGALRM, kill)
    signal.setitimer(signal.ITIMER_REAL, cap)
    _pid, status, usage = os.wait4(pid, 0)
    wall = time.monotonic() - started
    signal.setitimer(signal.ITIMER_REAL, 0)
    try:  # noqa: SIM105  # whatever the program left running in its group (ssh under sftp...) goes too
        os.killpg(pid, signal.SIGKILL)
    except OSError:
        pass
    with open(result_path, "w") as out:
        out.write(
            f"{wall} {os.waitstatus_to_exitcode(status)} {usage.ru_utime} {usage.ru_stime} "
            f"{usage.ru_maxrss} {int(bool(capped))}\n"
        )


if __name__ == "__main__":
    main()
