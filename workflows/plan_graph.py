"""A plan's task graph, pure: validation, readiness, what a failure skips, and the order ready
tasks start in. Run inside ``TaskPlanWorkflow`` (no I/O, no clock) and by the clients before they
start a plan, so a bad plan is refused with the same words everywhere.

**Order of ready tasks** (``start_order``): priority first (critical → low); then the longest chain
of unfinished tasks that wait on it, counted in tasks (the critical path: starting it early lets
the most work follow); then the estimate, shorter first (more tasks done sooner, and their results
reach their dependents sooner); then the order the plan lists them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from models.plan import MAX_TASKS, MAX_TASKS_BYTES, TaskSpec, TaskState, TaskStatus


def graph_errors(tasks: Sequence[TaskSpec], existing: Mapping[str, Sequence[str]] | None = None,
                 existing_bytes: int = 0) -> list[str]:
    """Everything wrong with adding ``tasks`` to a plan whose tasks are ``existing`` (id → its
    dependencies) and take ``existing_bytes`` (``spec_bytes``): duplicate ids, unknown
    dependencies, a task depending on itself, cycles (named ``a → b → c → a``), too many tasks, too
    large together. Empty: the graph is a DAG that fits."""
    existing = existing or {}
    errors: list[str] = []
    size = existing_bytes + sum(spec_bytes(task) for task in tasks)
    if size > MAX_TASKS_BYTES:
        errors.append(f"a plan's tasks take at most {MAX_TASKS_BYTES // 1024} KiB together ({-(-size // 1024)} KiB given: "
                      "prompts, tool arguments, titles); put long material in a file the tasks read")
    seen: set[str] = set()
    for task in tasks:
        if task.id in existing or task.id in seen:
            errors.append(f"duplicate task id {task.id!r}")
        seen.add(task.id)
    if len(existing) + len(seen) > MAX_TASKS:
        errors.append(f"a plan holds at most {MAX_TASKS} tasks ({len(existing) + len(seen)} given)")
    known = set(existing) | seen
    for task in tasks:
        unknown = [dep for dep in task.depends_on if dep not in known]
        if unknown:
            errors.append(f"task {task.id!r} depends on unknown task(s): {', '.join(map(repr, unknown))}")
        if task.id in task.depends_on:
            errors.append(f"task {task.id!r} depends on itself")
    edges = {k: list(v) for k, v in existing.items()}
    for task in tasks:  # a duplicate id adds its dependencies: it cannot hide a cycle
        edges.setdefault(task.id, []).extend(d for d in task.depends_on if d in known)
    cycle = find_cycle(edges)
    if cycle and len(cycle) > 2:  # a self-dependency is reported above
        order = cycle[::-1]  # in the order they would have to run
        errors.append(f"dependency cycle: {' → '.join(order)} (each task waits for the one before it)")
    return errors


def spec_bytes(task: TaskSpec) -> int:
    """What a task's spec takes in the plan's state: its JSON, in UTF-8."""
    return len(task.model_dump_json().encode())


def find_cycle(edges: Mapping[str, Sequence[str]]) -> list[str] | None:
    """A cycle of ``edges`` (task → what it depends on) as ``[a, b, c, a]`` (a depends on b…), or
    None. Iterative depth-first search in the order given, so the same graph names the same cycle."""
    colour: dict[str, int] = {}  # 1 on the current path, 2 done
    for root in edges:
        if colour.get(root):
            continue
        path: list[str] = []
        stack: list[tuple[str, Iterable[str]]] = [(root, iter(edges.get(root, ())))]
        colour[root], path = 1, [root]
        while stack:
            node, deps = stack[-1]
            dep = next(iter(deps), None)
            if dep is None:
                colour[node] = 2
                stack.pop()
                path.pop()
            elif colour.get(dep) == 1:
                return [*path[path.index(dep):], dep]
            elif not colour.get(dep):
                colour[dep] = 1
                path.append(dep)
                stack.append((dep, iter(edges.get(dep, ()))))
    return None


def dependents(tasks: Sequence[TaskStatus]) -> dict[str, list[str]]:
    """Task id → the ids of the tasks that depend on it directly, in plan order."""
    below: dict[str, list[str]] = {t.spec.id: [] for t in tasks}
    for task in tasks:
        for dep in task.spec.depends_on:
            below.setdefault(dep, []).append(task.spec.id)
    return below


def chain_lengths(tasks: Sequence[TaskStatus]) -> dict[str, int]:
    """Task id → the number of unfinished tasks on the longest chain that starts at it (itself
    included) and runs through the tasks waiting on it."""
    below = dependents(tasks)
    unfinished = {t.spec.id for t in tasks if not t.state.finished}
    lengths: dict[str, int] = {}
    for task in _dependents_first(tasks, below):
        own = 1 if task in unfinished else 0
        lengths[task] = own + max((lengths[d] for d in below[task] if d in unfinished), default=0)
    return lengths


def _dependents_first(tasks: Sequence[TaskStatus], below: Mapping[str, Sequence[str]]) -> list[str]:
    """Ids ordered so that every task comes after all the tasks that depend on it (the graph is a DAG)."""
    order: list[str] = []
    placed: set[str] = set()
    for task in tasks:
        stack = [(task.spec.id, False)]
        while stack:
            node, expanded = stack.pop()
            if node in placed:
                continue
            if expanded:
                placed.add(node)
                order.append(node)
                continue
            stack.append((node, True))
            stack.extend((d, False) for d in reversed(below.get(node, ())) if d not in placed)
    return order


def newly_ready(tasks: Sequence[TaskStatus]) -> list[str]:
    """Waiting tasks whose dependencies all succeeded."""
    done = {t.spec.id for t in tasks if t.state == TaskState.SUCCEEDED}
    return [t.spec.id for t in tasks if t.state == TaskState.WAITING and all(d in done for d in t.spec.depends_on)]


def blocked(tasks: Sequence[TaskStatus]) -> dict[str, str]:
    """Waiting tasks that can never run, and why: a dependency failed, was skipped or cancelled.
    Follows the whole chain in one call (a skipped task's dependents are skipped too)."""
    state = {t.spec.id: t.state for t in tasks}
    reasons: dict[str, str] = {}
    changed = True
    while changed:
        changed = False
        for task in tasks:
            if task.spec.id in reasons or task.state != TaskState.WAITING:
                continue
            for dep in task.spec.depends_on:
                gone = state[dep] if state[dep] in (TaskState.FAILED, TaskState.CANCELLED, TaskState.SKIPPED) else None
                if dep in reasons or gone is not None:
                    reasons[task.spec.id] = f"dependency {dep!r} {'was skipped' if dep in reasons else gone.value}"
                    state[task.spec.id] = TaskState.SKIPPED
                    changed = True
                    break
    return reasons


def start_order(tasks: Sequence[TaskStatus]) -> list[str]:
    """The ready tasks, in the order they should start (module docstring)."""
    chains = chain_lengths(tasks)
    ready = [(i, t) for i, t in enumerate(tasks) if t.state == TaskState.READY]
    ready.sort(key=lambda it: (it[1].spec.priority.rank, -chains[it[1].spec.id], it[1].spec.estimate_s, it[0]))
    return [t.spec.id for _, t in ready]
