"""The README's "Production processes" list runs everything a deployment needs, as the Compose and
Kubernetes tests check for their files: every queue has a consumer, every worker also runs the
safety nets (`maintenance`), lanes of the two categories never share a worker, exactly one beat,
the migrations and the API. (Each command also parses with the real CLI:
tests/deploy/test_commands.)"""

from __future__ import annotations

from notifier.tasks import ALL_QUEUES, CAMPAIGNS, MAINTENANCE

from ._files import lane_category, readme_processes, readme_worker_lanes


def test_every_queue_is_consumed_by_a_readme_worker() -> None:
    consumed = {queue for queues in readme_worker_lanes() for queue in queues}
    assert set(ALL_QUEUES) <= consumed, (
        f"the README runs no consumer for {set(ALL_QUEUES) - consumed}"
    )
    assert consumed <= set(ALL_QUEUES), (
        f"the README names unknown queues {consumed - set(ALL_QUEUES)}"
    )


def test_every_readme_worker_runs_the_safety_nets() -> None:
    workers = readme_worker_lanes()
    assert workers
    for queues in workers:
        assert MAINTENANCE in queues, f"a README worker without {MAINTENANCE}: {queues}"


def test_readme_workers_keep_the_lane_categories_apart() -> None:
    for queues in readme_worker_lanes():
        categories = {lane_category(q) for q in queues} - {None}
        assert len(categories) <= 1, queues
        if CAMPAIGNS in queues:
            assert "transactional" not in categories, queues


def test_readme_runs_migrations_the_api_and_exactly_one_beat() -> None:
    commands = readme_processes()
    assert commands[0][:2] == ["db", "upgrade"], "migrations come first"
    assert sum(1 for args in commands if args[:1] == ["api"]) == 1
    assert sum(1 for args in commands if args[:1] == ["beat"]) == 1
