"""Commands that run other commands: what ``sudo``, ``env``, ``timeout``, ``bash -c``… go on to run.

The policy only uses this to find something to *deny or ask about* behind a wrapper
(``sudo rm -rf /``, ``env -C / rm -rf .``, ``bash -c 'mkfs /dev/sda'``). Nothing is ever allowed
because of it: an allow rule sees the command exactly as written, wrapper and options included.
That is why a wrong guess here can only cost a deny (the call then asks), never grant an allow.

Options are read with each wrapper's own table (GNU coreutils, util-linux, sudo). An option this
table does not know is read both ways — as a flag and as taking the next word — and every reading
is judged: ``nice --foo rm -rf /`` is denied whichever way ``--foo`` goes.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from policy.shell import ASSIGNMENT, Word

MAX_READINGS = 4
"""Readings kept per wrapper when options are ambiguous."""


@dataclass(frozen=True)
class Unwrapped:
    """One reading of what a wrapper runs."""

    run: tuple[Word, ...] = ()
    """The command it runs next, to unwrap further; empty: the wrapper runs nothing more."""
    scripts: tuple[Word, ...] = ()
    """Shell source it runs (``bash -c``, ``eval``, ``su -c``)."""
    also: tuple[tuple[Word, ...], ...] = ()
    """Further commands it runs besides itself (``find -exec``)."""
    assignments: tuple[Word, ...] = ()
    """``NAME=value`` it sets for ``run`` (``env``, ``sudo``)."""
    input_arguments: str | None = None
    """Why ``run`` (or ``also``) gets arguments only known at run time (``xargs``, ``find {}``)."""
    foreign: str | None = None
    """Its scripts are not bash (``env -S``, ``cmd /c``): read as bash anyway, and unsure."""
    reads_stdin: bool = False
    """A shell reading its program from standard input (here-strings, here-documents)."""


@dataclass(frozen=True)
class Options:
    flags: str = ""
    valued: str = ""
    """Short options taking a value, attached (``-n10``) or as the next word (``-n 10``)."""
    optional: str = ""
    """Short options whose value can only be attached (``xargs -e[EOF]``)."""
    long_flags: frozenset[str] = frozenset()
    long_valued: frozenset[str] = frozenset()
    numeric: bool = False
    """``-10`` is an option (``nice``)."""


def unwrap(words: Sequence[Word]) -> tuple[Unwrapped, ...] | None:
    """What ``words`` runs, one entry per reading; ``None`` when its command is no known wrapper."""
    handler = WRAPPERS.get(command_name(words[0].value))
    return handler(list(words)) if handler else None


def command_name(word: str) -> str:
    """``/usr/bin/rm`` → ``rm``; ``C:\\Windows\\format.com`` → ``format.com``: the name looked up last."""
    stripped = word.rstrip("/")
    for separator in ("/", "\\"):
        if separator in stripped:
            stripped = stripped.rsplit(separator, 1)[-1]
    return stripped or word


def operand_starts(words: list[Word], options: Options, start: int = 1) -> list[tuple[int, frozenset[str]]]:
    """Where the operands may start after the options, with the options seen: one per reading."""
    results: list[tuple[int, frozenset[str]]] = []
    stack = [(start, frozenset[str]())]
    while stack and len(results) < MAX_READINGS:
        i, seen = stack.pop()
        while True:
            arg = words[i].value if i < len(words) else None
            if arg is None or arg == "-" or not arg.startswith("-"):
                results.append((i, seen))
                break
            if arg == "--":
                results.append((i + 1, seen | {"--"}))
                break
            if arg.startswith("--"):
                name, equals, _ = arg.partition("=")
                name, kind = _long_option(name, options)
                seen |= {name}
                if kind == "unknown" and not equals:
                    stack.append((i + 2, seen))
                i += 2 if kind == "valued" and not equals else 1
                continue
            if options.numeric and arg[1:].isdigit():
                i += 1
                continue
            i, seen = _short_cluster(arg, i, seen, options, stack)
    return list(dict.fromkeys(results))


def _short_cluster(arg: str, i: int, seen: frozenset[str], options: Options, stack: list) -> tuple[int, frozenset]:
    """Read ``-abc`` at ``words[i]``; unknown letters also push the reading where they take a value."""
    i += 1
    for position, letter in enumerate(arg[1:], start=1):
        seen |= {letter}
        last = position == len(arg) - 1
        if letter in options.flags:
            continue
        if letter in options.optional:
            break
        if letter in options.valued:
            return (i + 1 if last else i), seen
        stack.append((i + 1 if last else i, seen))
    return i, seen


def _long_option(name: str, options: Options) -> tuple[str, str]:
    """GNU getopt_long: an exact name or a unique prefix; (canonical name, flag|valued|unknown)."""
    known = {**{n: "flag" for n in options.long_flags}, **{n: "valued" for n in options.long_valued}}
    if name in known:
        return name, known[name]
    candidates = [n for n in known if n.startswith(name)]
    if len(candidates) == 1:
        return candidates[0], known[candidates[0]]
    return name, "unknown"


def _assignments(words: list[Word], i: int) -> int:
    while i < len(words) and ASSIGNMENT.match(words[i].raw):
        i += 1
    return i


def _joined(words: Sequence[Word]) -> Word:
    """Words a wrapper joins with spaces into shell source (``eval``, ``watch``, ``ssh``)."""
    return Word(" ".join(w.value for w in words), raw=" ".join(w.raw for w in words),
                dynamic=any(w.dynamic for w in words), pattern=any(w.pattern for w in words),
                unsure=next((w.unsure for w in words if w.unsure), None))


# --- wrapper kinds -------------------------------------------------------------------------------

Handler = Callable[[list[Word]], tuple[Unwrapped, ...]]


def runs_command(options: Options = Options(), operands: int = 0, assignments: bool = False,
                 no_command_with: frozenset[str] = frozenset(), input_arguments: str | None = None) -> Handler:
    """A wrapper that takes options, ``operands`` more words (a duration, a directory…), perhaps
    ``NAME=value`` words, then the command it runs."""

    def handler(words: list[Word]) -> tuple[Unwrapped, ...]:
        readings = []
        for i, seen in operand_starts(words, options):
            if seen & no_command_with:
                readings.append(Unwrapped())
                continue
            i += operands
            end = _assignments(words, i) if assignments else i
            run = tuple(words[end:])
            readings.append(Unwrapped(run=run, assignments=tuple(words[i:end]),
                                      input_arguments=input_arguments if run else None))
        return tuple(readings)

    return handler


def runs_script(flags: tuple[str, ...] = ("-c", "--command")) -> Handler:
    """``su -c SOURCE``, ``sg GROUP -c SOURCE``, ``script -c SOURCE FILE``: the source after a flag,
    wherever it stands; without one they start an interactive shell (nothing more to judge)."""

    letters = {flag[1] for flag in flags if len(flag) == 2}

    def handler(words: list[Word]) -> tuple[Unwrapped, ...]:
        for index, word in enumerate(words[1:], start=1):
            value = word.value
            name, equals, attached = value.partition("=")
            if equals and name in flags and name.startswith("--"):
                return (Unwrapped(scripts=(_part(word, attached),)),)
            if value.startswith("-") and not value.startswith("--"):
                at = next((i for i, letter in enumerate(value[1:], start=1) if letter in letters), None)
                if at is not None and at < len(value) - 1:  # su -cCMD: the rest is the source
                    return (Unwrapped(scripts=(_part(word, value[at + 1:]),)),)
                if at is not None and index + 1 < len(words):  # su -c CMD, su -lc CMD
                    return (Unwrapped(scripts=(words[index + 1],)),)
            elif value in flags and index + 1 < len(words):
                return (Unwrapped(scripts=(words[index + 1],)),)
        return (Unwrapped(),)

    return handler


def _part(word: Word, value: str) -> Word:
    """A piece of ``word`` (an option's attached value), with what is known of the whole word."""
    return Word(value, raw=value, dynamic=word.dynamic, pattern=word.pattern, unsure=word.unsure)


def _one_of(when_script: Handler, otherwise: Handler, flags: tuple[str, ...] = ("-c", "--command")) -> Handler:
    """``runuser``/``flock``: shell source after ``-c``, else a command after the options."""

    def handler(words: list[Word]) -> tuple[Unwrapped, ...]:
        if any(w.value in flags or w.value.startswith("--command=") for w in words[1:]):
            return when_script(words)
        return otherwise(words)

    return handler


def _shell(words: list[Word]) -> tuple[Unwrapped, ...]:
    """``bash -c 'source' name args…`` → the source; ``bash`` / ``bash -s`` reads standard input;
    ``bash script.sh`` runs a file (judged as itself)."""
    i, command_mode, stdin = 1, False, False
    while i < len(words):
        arg = words[i].value
        if arg == "--":
            i += 1
            break
        if arg in ("-o", "+o", "-O", "+O", "--rcfile", "--init-file"):
            i += 2
            continue
        if arg.startswith("--") or (arg[:1] in "-+" and len(arg) > 1):
            if arg[0] == "-" and not arg.startswith("--"):
                command_mode = command_mode or "c" in arg[1:]
                stdin = stdin or "s" in arg[1:]
            i += 1
            continue
        break
    if command_mode:
        return (Unwrapped(scripts=(words[i],)),) if i < len(words) else (Unwrapped(),)
    return (Unwrapped(reads_stdin=stdin or i >= len(words)),)


def _env(words: list[Word]) -> tuple[Unwrapped, ...]:
    """``env [options] [NAME=value…] command``; ``-S STRING`` (also ``-vS…``, ``--split-string``)
    splits STRING into the command by env's own rules: judged as shell source, and unsure."""
    for index, word in enumerate(words[1:], start=1):
        value = word.value
        if value == "--" or not value.startswith("-") or value == "-":
            break
        split = _split_string(value)
        if split is not None:
            attached, rest = split, words[index + 1:]
            if not attached and "=" not in value:
                attached, rest = (words[index + 1].value if index + 1 < len(words) else ""), words[index + 2:]
            return (Unwrapped(scripts=(_joined([Word(attached), *rest]),),
                              foreign="env -S splits its string by its own rules"),)
    return _ENV(words)


def _split_string(option: str) -> str | None:
    """The string attached to env's ``-S`` in ``option`` ("" when it is the next word), or None."""
    if option.startswith("--"):
        name, _, attached = option.partition("=")
        return attached if len(name) > 3 and "--split-string".startswith(name) else None
    for position, letter in enumerate(option[1:], start=1):
        if letter == "S":
            return option[position + 1:]
        if letter in "uC":
            return None  # the rest is the value of -u/-C
    return None


_ENV = runs_command(Options(flags="i0v", valued="uCS", long_flags=frozenset({
    "--ignore-environment", "--null", "--debug", "--help", "--version", "--list-signal-handling",
    "--default-signal", "--ignore-signal", "--block-signal"}),
    long_valued=frozenset({"--unset", "--chdir", "--split-string"})), assignments=True)


_SUDO = runs_command(  # sudo -e is sudoedit: it edits files and runs nothing
    Options(flags="AbBEeHiKklNnPSsVv", valued="CDghpRrtTUu", long_flags=frozenset({
    "--askpass", "--background", "--bell", "--edit", "--help", "--set-home", "--login", "--remove-timestamp",
    "--reset-timestamp", "--list", "--non-interactive", "--preserve-groups", "--shell", "--stdin", "--validate",
    "--version", "--preserve-env"}), long_valued=frozenset({
    "--chdir", "--chroot", "--close-from", "--group", "--host", "--prompt", "--role", "--type",
    "--command-timeout", "--other-user", "--user"})), assignments=True,
    no_command_with=frozenset({"e", "--edit", "v", "--validate", "K", "--remove-timestamp", "V", "--version",
                                "l", "--list"}))


def _xargs(words: list[Word]) -> tuple[Unwrapped, ...]:
    readings = _XARGS(words)
    echo = (Word("echo", raw="echo"),)
    return tuple(r if r.run else Unwrapped(run=echo, input_arguments=_XARGS_INPUT) for r in readings)


_XARGS_INPUT = "arguments xargs reads from its input"
_XARGS = runs_command(Options(flags="0oprtx", valued="aEILnPsd", optional="eil", long_flags=frozenset({
    "--null", "--open-tty", "--interactive", "--no-run-if-empty", "--verbose", "--exit", "--show-limits",
    "--help", "--version"}), long_valued=frozenset({
    "--arg-file", "--delimiter", "--eof", "--replace", "--max-lines", "--max-args", "--max-procs",
    "--max-chars", "--process-slot-var"})), input_arguments=_XARGS_INPUT)


def _find(words: list[Word]) -> tuple[Unwrapped, ...]:
    also: list[tuple[Word, ...]] = []
    i = 1
    while i < len(words):
        if words[i].value in ("-exec", "-execdir", "-ok", "-okdir"):
            j = i + 1
            while j < len(words) and words[j].value not in (";", "+"):
                j += 1
            also.append(tuple(words[i + 1:j]))
            i = j
        i += 1
    uses_names = any("{}" in w.value for command in also for w in command)
    return (Unwrapped(also=tuple(also), input_arguments="file names find substitutes for {}" if uses_names else None),)


def _eval(words: list[Word]) -> tuple[Unwrapped, ...]:
    return (Unwrapped(scripts=(_joined(words[1:]),)),) if len(words) > 1 else (Unwrapped(),)


def _alias(words: list[Word]) -> tuple[Unwrapped, ...]:
    """``alias x='rm -rf /'`` defines source a later ``x`` runs: judge it now."""
    return (Unwrapped(scripts=tuple(Word(w.value.split("=", 1)[1]) for w in words[1:] if "=" in w.value)),)


def _trap(words: list[Word]) -> tuple[Unwrapped, ...]:
    """``trap 'source' SIGNAL…`` runs its first operand as shell source."""
    readings = []
    for i, seen in operand_starts(words, Options(flags="lpP")):
        if {"l", "p", "P"} & seen or i >= len(words) or words[i].value == "-":
            readings.append(Unwrapped())
        else:
            readings.append(Unwrapped(scripts=(words[i],)))
    return tuple(readings)


def _watch(words: list[Word]) -> tuple[Unwrapped, ...]:
    readings = []
    for i, seen in operand_starts(words, _WATCH):
        rest = tuple(words[i:])
        if not rest:
            readings.append(Unwrapped())
        elif "x" in seen or "--exec" in seen:
            readings.append(Unwrapped(run=rest))
        else:
            readings.append(Unwrapped(scripts=(_joined(rest),)))  # watch runs sh -c "…"
    return tuple(readings)


_WATCH = Options(flags="bcCefghprtvwx", valued="nq", optional="d", long_flags=frozenset({
    "--beep", "--color", "--no-color", "--errexit", "--chgexit", "--exec", "--help", "--precise", "--no-rerun",
    "--no-title", "--version", "--no-wrap", "--differences"}), long_valued=frozenset({"--interval", "--equexit"}))


def _windows_shell(words: list[Word]) -> tuple[Unwrapped, ...]:
    """``cmd /c …`` and ``powershell [-Command] …``: their text is read as bash would, for denies."""
    powershell = command_name(words[0].value).casefold().startswith(("powershell", "pwsh"))
    for index, word in enumerate(words[1:], start=1):
        flag = word.value.casefold()
        command_flag = flag in ("/c", "/k", "/r") or (len(flag) > 1 and flag[0] == "-" and "command".startswith(flag[1:]))
        if command_flag or (powershell and not flag.startswith(("-", "/"))):
            start = index + 1 if command_flag else index
            return (Unwrapped(scripts=(_joined(words[start:]),), foreign=f"{words[0].value} is not bash"),)
    return (Unwrapped(),)


def _subcommand_runs(subcommand: str, options: Options = Options(), operands: int = 0) -> Handler:
    """``uv run CMD``, ``poetry run CMD``, ``bundle exec CMD``, ``direnv exec DIR CMD``…"""
    inner = runs_command(options, operands=operands)

    def handler(words: list[Word]) -> tuple[Unwrapped, ...]:
        for index, word in enumerate(words[1:], start=1):
            if word.value == subcommand:
                return inner(words[index:])
            if not word.value.startswith("-"):
                break
        return (Unwrapped(),)

    return handler


def _ssh(words: list[Word]) -> tuple[Unwrapped, ...]:
    """``ssh [options] host command…`` runs the command through the remote user's shell."""
    readings = []
    for i, _ in operand_starts(words, _SSH):
        rest = words[i + 1:]
        readings.append(Unwrapped(scripts=(_joined(rest),)) if rest else Unwrapped())
    return tuple(readings)


_SSH = Options(flags="46AaCfGgKkMNnqsTtVvXxYy", valued="BbcDEeFIiJLlmOoPpQRSWw")
_PLAIN = runs_command()
_SHELLS = ("sh", "bash", "dash", "zsh", "ksh", "ash", "mksh", "yash", "fish", "rbash", "csh", "tcsh")

WRAPPERS: dict[str, Handler] = {
    **{name: _shell for name in _SHELLS},
    "env": _env,
    "sudo": _SUDO,
    "doas": runs_command(Options(flags="nsL", valued="uC"), no_command_with=frozenset({"L"})),
    "run0": runs_command(Options(long_valued=frozenset({"--user", "--group", "--chdir", "--setenv", "--unit",
                                                         "--property", "--description", "--slice", "--nice"}),
                                 valued="ugDEp")),
    "pkexec": runs_command(Options(long_flags=frozenset({"--disable-internal-agent", "--keep-cwd"}),
                                   long_valued=frozenset({"--user"}))),
    "xargs": _xargs,
    "parallel": runs_command(Options(valued="jSdEIa", long_valued=frozenset({
        "--jobs", "--sshlogin", "--delimiter", "--arg-file"})), input_arguments="arguments parallel supplies"),
    "find": _find,
    "nohup": _PLAIN,
    "builtin": _PLAIN,
    "setsid": runs_command(Options(flags="cfw")),
    "busybox": _PLAIN,
    "toybox": _PLAIN,
    "unbuffer": runs_command(Options(flags="p")),
    "fakeroot": runs_command(Options(flags="u", valued="lsib", long_valued=frozenset({"--lib", "--faked"}))),
    "time": runs_command(Options(flags="apqvV", valued="fo", long_flags=frozenset({
        "--append", "--portability", "--verbose", "--quiet", "--help", "--version"}),
        long_valued=frozenset({"--format", "--output"}))),
    "nice": runs_command(Options(valued="n", long_valued=frozenset({"--adjustment"}), numeric=True)),
    "timeout": runs_command(Options(flags="v", valued="sk", long_flags=frozenset({
        "--preserve-status", "--foreground", "--verbose"}), long_valued=frozenset({"--signal", "--kill-after"})),
        operands=1),
    "command": runs_command(Options(flags="p"), no_command_with=frozenset({"v", "V"})),
    "exec": runs_command(Options(flags="cl", valued="a")),
    "stdbuf": runs_command(Options(valued="ioe", long_valued=frozenset({"--input", "--output", "--error"}))),
    "ionice": runs_command(Options(flags="t", valued="cnpPu", long_valued=frozenset({
        "--class", "--classdata", "--pid", "--pgid", "--uid"})), no_command_with=frozenset({"p", "P", "u"})),
    "chrt": runs_command(Options(flags="abdefiormpRv", valued="TPD"), operands=1, no_command_with=frozenset({"p"})),
    "chroot": runs_command(Options(long_flags=frozenset({"--skip-chdir"}),
                                   long_valued=frozenset({"--userspec", "--groups"})), operands=1),
    "taskset": runs_command(Options(flags="ac", valued=""), operands=1, no_command_with=frozenset({"p"})),
    "prlimit": runs_command(Options(flags="o", valued="p"), no_command_with=frozenset({"p", "--pid"})),
    "setpriv": runs_command(Options(flags="d", long_flags=frozenset({
        "--clear-groups", "--init-groups", "--keep-groups", "--no-new-privs", "--reset-env", "--dump"}),
        long_valued=frozenset({"--ruid", "--euid", "--rgid", "--egid", "--reuid", "--regid", "--groups",
                               "--inh-caps", "--ambient-caps", "--bounding-set", "--securebits",
                               "--pdeathsig", "--selinux-label", "--apparmor-profile", "--landlock-access",
                               "--landlock-rule"}))),
    "nsenter": runs_command(Options(flags="aFZ", valued="tSGwr", optional="mUinpuCT")),
    "unshare": runs_command(Options(flags="mUinpuCTfr", long_flags=frozenset({
        "--fork", "--map-root-user", "--map-current-user", "--mount-proc", "--kill-child"}),
        long_valued=frozenset({"--propagation", "--setgroups", "--wd", "--root"}))),
    "faketime": runs_command(Options(flags="f", valued="mp"), operands=1),
    "xvfb-run": runs_command(Options(flags="a", valued="nslefpw", long_flags=frozenset({"--auto-servernum"}),
                                     long_valued=frozenset({"--server-num", "--server-args", "--error-file",
                                                            "--auth-file", "--xauth-protocol", "--wait"}))),
    "systemd-run": runs_command(Options(flags="tPqGdSr", valued="pEMuH", long_valued=frozenset({
        "--unit", "--property", "--description", "--slice", "--setenv", "--uid", "--gid", "--working-directory",
        "--machine", "--host", "--nice", "--on-active", "--on-calendar", "--service-type"}))),
    "systemd-inhibit": runs_command(Options(long_valued=frozenset({"--what", "--who", "--why", "--mode"}))),
    "dbus-run-session": runs_command(Options(long_valued=frozenset({"--config-file", "--dbus-daemon"}))),
    "valgrind": runs_command(Options(flags="qv")),
    "strace": runs_command(Options(flags="cCdDfFhiqrtTvVwxyZkn", valued="abeEIoOpPsSuUX")),
    "ltrace": runs_command(Options(flags="bCcDfhiLrStTV", valued="aAeFlnopsuwx")),
    "proxychains": runs_command(Options(flags="q", valued="f")),
    "proxychains4": runs_command(Options(flags="q", valued="f")),
    "torsocks": runs_command(Options(flags="diq", valued="uapP")),
    "firejail": _PLAIN,
    "catchsegv": _PLAIN,
    "chronic": runs_command(Options(flags="ev")),
    "su": runs_script(),
    "runuser": _one_of(runs_script(), runs_command(Options(flags="lmpP", valued="ugGsw"))),
    "sg": runs_script(),
    "script": runs_script(),
    "flock": _one_of(runs_script(), runs_command(Options(flags="sxenuoFh", valued="wE", long_valued=frozenset({
        "--timeout", "--conflict-exit-code"})), operands=1)),
    "watch": _watch,
    "eval": _eval,
    "alias": _alias,
    "trap": _trap,
    "ssh": _ssh,
    "nix-shell": runs_script(("--run", "--command")),
    "cmd": _windows_shell,
    "cmd.exe": _windows_shell,
    "powershell": _windows_shell,
    "powershell.exe": _windows_shell,
    "pwsh": _windows_shell,
    "pwsh.exe": _windows_shell,
    "uv": _subcommand_runs("run"),
    "poetry": _subcommand_runs("run"),
    "pipenv": _subcommand_runs("run"),
    "pdm": _subcommand_runs("run"),
    "hatch": _subcommand_runs("run"),
    "bundle": _subcommand_runs("exec"),
    "direnv": _subcommand_runs("exec", operands=1),
    "conda": _subcommand_runs("run", Options(valued="np", long_valued=frozenset({"--name", "--prefix"}))),
}
"""Every wrapper by the name it is called with (after ``command_name``)."""
