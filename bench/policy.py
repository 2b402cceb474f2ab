"""How long the policy engine takes to judge a call, inside a workflow task: ``python -m bench.policy``.

Prints the mean time per call for typical calls and the worst shapes a model can send (a
20,000-character command of many words, many commands, deep nesting). Figures depend on the
machine; quote them with the load average printed at the end.
"""

from __future__ import annotations

import os
import time

from config.policy import load_policy
from models.policy import ActionType, ToolCallContext
from policy.engine import evaluate

POLICY = load_policy()
TYPICAL = [
    "ls -la", "cd build && make -j4 2>&1 | tee log.txt", "sudo env -C / timeout 5 nice rm -rf /tmp/x; echo done",
    "git commit -m 'fix: a long message with words' && git push origin main",
    "find . -name '*.py' -exec grep -l foo {} + | xargs wc -l",
]
WORST = {
    "3,000 words": "echo " + " ".join(f"w{i}" for i in range(3000)),
    "400 commands": "; ".join(f"ls d{i}" for i in range(400)),
    "12 nested bash -c": "bash -c " * 12 + "ls",
    "1,000 substitutions": " ".join(f"$(ls {i})" for i in range(1000)),
}


def per_call(command: str, seconds: float = 2.0) -> float:
    call = ToolCallContext(tool="run_command", action_type=ActionType.TERMINAL_COMMAND, arguments={"command": command})
    evaluate(POLICY, call)
    count, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds or count < 3:
        evaluate(POLICY, call)
        count += 1
    return (time.perf_counter() - started) / count * 1000


def main() -> None:
    print(f"typical commands: {sum(per_call(c) for c in TYPICAL) / len(TYPICAL):.2f} ms per call")
    write = ToolCallContext(tool="write_file", action_type=ActionType.FILE_WRITE,
                            arguments={"path": "src/app.py", "content": "x"})
    started = time.perf_counter()
    for _ in range(2000):
        evaluate(POLICY, write)
    print(f"write_file: {(time.perf_counter() - started) / 2:.3f} ms per call")
    for name, command in WORST.items():
        print(f"{name} ({len(command)} chars): {per_call(command, 1.0):.1f} ms per call")
    print("load average:", " ".join(f"{x:.2f}" for x in os.getloadavg()))


if __name__ == "__main__":
    main()
