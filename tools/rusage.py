"""Runs a command and reports the CPU time and peak memory of it and of every
process it started, including those that outlive their parent (the CLI's
plugins, the in-process program server): this process becomes their child
subreaper, so every descendant is reaped here with its resource usage.

Usage: python3 tools/rusage.py COMMAND [ARG...]
The command's exit code is passed on; the last line on stderr is
`RUSAGE wall=<s> cpu=<s> maxrss_kb=<KiB>` (wall: until the command itself
exits; cpu: user + system of all descendants; maxrss: the largest single process).
"""
import ctypes
import os
import sys
import time

PR_SET_CHILD_SUBREAPER = 36
ctypes.CDLL(None, use_errno=True).prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
started = time.monotonic()
child = os.fork()
if child == 0:
    os.execvp(sys.argv[1], sys.argv[1:])
code, wall, cpu, rss = 1, 0.0, 0.0, 0
while True:
    try:
        pid, status, usage = os.wait4(-1, 0)
    except ChildProcessError:
        break
    cpu += usage.ru_utime + usage.ru_stime
    rss = max(rss, usage.ru_maxrss)
    if pid == child:
        code, wall = os.waitstatus_to_exitcode(status), time.monotonic() - started
print(f"RUSAGE wall={wall:.2f} cpu={cpu:.2f} maxrss_kb={rss}", file=sys.stderr, flush=True)
sys.exit(code if code >= 0 else 128 - code)
