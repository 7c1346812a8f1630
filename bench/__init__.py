"""preflight's benchmark suite: preflight against the programs users would otherwise run.

`python -m bench --quick` (about a minute) or `python -m bench` (about six) starts loopback
servers (silent DROP ports, tarpits, a real OpenSSH sshd), runs every scenario for preflight and
its baselines side by side, several times each, and prints a table of medians and ratios, also
written as JSON. See bench/README.md. Modules: `measure` (run one program: wall, CPU, peak RSS),
`servers` (the loopback servers), `scenarios` (what each scenario races), `suite` (running,
summarising, the bars), `report` (table and JSON); `programs/` holds the baseline scripts.
"""
