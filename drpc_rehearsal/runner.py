"""Run a schedule's steps side by side where the schedule allows, and tell it as if in order.

The rehearsal's steps are mostly waits on other processes (the generated scripts, Rucio's
daemons, Kafka), and the sites of a campaign work independently until a step needs another
site's: so a step starts as soon as every step it needs has passed, on a small thread pool.
What the rehearsal tells is still the campaign's order, whatever the threads' timing:

* ``emit`` is called for each step in campaign order, once it and every step before it ended;
* after a failure, no step later in campaign order starts, the steps before it still run, and
  the outcome is the steps up to the first failure in campaign order (those that ran after it,
  started while it was running, are left out): what a run one step at a time would have done.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import Protocol, TypeVar

__all__ = ["Keyed", "run_steps"]


class Keyed(Protocol):
    @property
    def key(self) -> str: ...


S = TypeVar("S", bound=Keyed)


def run_steps(steps: Sequence[S], needs: Mapping[str, Iterable[str]],
              run: Callable[[S], None], *, workers: int, emit: Callable[[S], None],
              abort: Callable[[], None]) -> tuple[list[S], BaseException | None]:
    """Run every step (``run(step)``, in a worker thread) once the steps ``needs[step.key]``
    passed; a step fails by raising. Returns the steps that count, in campaign order (all of
    them, or those up to the first failure), and that failure's exception (None: all passed).

    ``emit(step)`` runs in the calling thread. On an exception in the calling thread (Ctrl-C, a
    signal turned into an exception), ``abort()`` is called to stop what the steps started, the
    steps not started are dropped, the running ones are waited for, and the exception goes on.
    """
    order = {s.key: i for i, s in enumerate(steps)}
    need = {s.key: frozenset(needs.get(s.key, ())) & order.keys() for s in steps}
    waiting = list(steps)
    running: dict[Future[None], S] = {}
    passed: set[str] = set()
    ended: set[str] = set()
    first_failure = len(steps)
    error: BaseException | None = None
    emitted = 0

    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="rehearsal-step") as pool:
        try:
            while True:
                ready = [s for s in waiting if order[s.key] < first_failure
                         and need[s.key] <= passed]
                for step in ready[:workers - len(running)]:
                    waiting.remove(step)
                    running[pool.submit(run, step)] = step
                if not running:
                    break
                completed, _ = wait(running, return_when=FIRST_COMPLETED)
                for future in completed:
                    step = running.pop(future)
                    ended.add(step.key)
                    exc = future.exception()
                    if exc is None:
                        passed.add(step.key)
                    elif order[step.key] < first_failure:
                        first_failure, error = order[step.key], exc
                while (emitted < min(len(steps), first_failure + 1)
                       and steps[emitted].key in ended):
                    emit(steps[emitted])
                    emitted += 1
        except BaseException:
            abort()
            pool.shutdown(wait=True, cancel_futures=True)
            raise
    stranded = [s.key for s in waiting if order[s.key] < first_failure]
    if stranded:  # a step needing a later one: the schedule's own check forbids it
        raise RuntimeError(f"steps that could never start: {', '.join(stranded)}")
    return list(steps[:first_failure + 1]), error
