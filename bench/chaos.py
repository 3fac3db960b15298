"""Nothing lost under faults: --n notifications posted while a worker is SIGKILLed every few
seconds and the broker is restarted once. At the end every notification must be done (sent or
final), none lost; duplicates (more than one accepted attempt) are counted and reported.

Runs the real processes: `notifier api`, two `notifier worker`s, `notifier beat` (with short
safety-net intervals so recovery is quick), on PostgreSQL and RabbitMQ (or Redis, whose restart
loses every queued message: the sweeper must republish them).

    python -m bench.chaos [--n 20000] [--broker rabbitmq|redis] [--kill-every 3]
"""

from __future__ import annotations

import argparse
import signal
import subprocess
import tempfile
import threading
import time
from contextlib import ExitStack
from pathlib import Path

import httpx
from sqlalchemy import create_engine, text

from bench.common import (BIN, BROKERS, create_key, emit, environment, free_port, fresh_database, process,
                          purge_queues, stop)
from bench.e2e import providers_file

DONE = ("sent", "delivered", "failed", "expired", "suppressed", "cancelled")


def restart_broker(kind: str) -> None:
    if kind == "rabbitmq":
        subprocess.run(["rabbitmqctl", "stop_app"], check=True, capture_output=True)
        time.sleep(2)
        subprocess.run(["rabbitmqctl", "start_app"], check=True, capture_output=True)
    else:
        subprocess.run(["redis-cli", "-n", "0", "shutdown", "nosave"], capture_output=True)
        time.sleep(2)
        subprocess.run(["redis-server", "--daemonize", "yes", "--bind", "127.0.0.1", "-::1", "--port", "6379",
                        "--save", "", "--appendonly", "no", "--dir", "/var/lib/redis",
                        "--logfile", "/var/log/redis/ci.log"], check=True, capture_output=True)


def post_all(base: str, key: str, n: int, batch: int) -> None:
    with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {key}"}, timeout=60) as client:
        for start in range(0, n, batch):
            items = [{"channel": "email", "to": f"user{i}@example.com", "subject": "Receipt", "body": "Thanks",
                      "reference": f"r{i}"} for i in range(start, min(n, start + batch))]
            for _ in range(30):  # the API itself stays up; retry while the broker restarts
                try:
                    client.post("/v1/notifications/batch", json={"notifications": items}).raise_for_status()
                    break
                except httpx.HTTPError:
                    time.sleep(1)
            time.sleep(0.05)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=20000)
    parser.add_argument("--broker", choices=sorted(BROKERS), default="rabbitmq")
    parser.add_argument("--kill-every", type=float, default=3.0)
    parser.add_argument("--provider-latency-ms", type=float, default=20)
    parser.add_argument("--timeout", type=float, default=600)
    args = parser.parse_args()
    broker = BROKERS[args.broker]
    purge_queues(broker)
    kills = 0
    with fresh_database() as url, tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        env = environment(url, broker, directory,
                          NOTIFIER_PROVIDERS_FILE=str(providers_file(directory, args.provider_latency_ms)),
                          NOTIFIER_SWEEP_INTERVAL_SECONDS="2", NOTIFIER_QUEUED_STALE_SECONDS="15",
                          NOTIFIER_SENDING_TIMEOUT_SECONDS="15", NOTIFIER_METRICS_PORT=str(free_port()))
        key = create_key(env)
        port = free_port()
        worker_cmd = [str(BIN / "notifier"), "worker", "--lanes", "email.transactional,maintenance",
                      "--concurrency", "16"]
        engine = create_engine(url)
        with ExitStack() as stack:
            stack.enter_context(process([str(BIN / "notifier"), "api", "--port", str(port)], env,
                                        ready_url=f"http://127.0.0.1:{port}/healthz"))
            stack.enter_context(process([str(BIN / "notifier"), "beat"], env))
            workers = [subprocess.Popen(worker_cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                        start_new_session=True) for _ in range(2)]
            poster = threading.Thread(target=post_all, args=(f"http://127.0.0.1:{port}", key, args.n, 500))
            started = time.perf_counter()
            poster.start()
            broker_restarted = False
            done = 0
            while time.perf_counter() - started < args.timeout:
                time.sleep(args.kill_every)
                elapsed = time.perf_counter() - started
                if poster.is_alive() or elapsed < 20:
                    victim = workers[kills % len(workers)]
                    stop(victim, signal.SIGKILL)
                    kills += 1
                    workers[workers.index(victim)] = subprocess.Popen(
                        worker_cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                        start_new_session=True)
                if not broker_restarted and elapsed > 8:
                    restart_broker(args.broker)
                    broker_restarted = True
                with engine.connect() as c:
                    done = c.execute(text("SELECT count(*) FROM notifications WHERE status = ANY(:s)"),
                                     {"s": list(DONE)}).scalar_one()
                if not poster.is_alive() and done >= args.n:
                    break
            poster.join()
            elapsed = time.perf_counter() - started
            for worker in workers:
                stop(worker)
        with engine.connect() as c:
            stored = c.execute(text("SELECT count(*) FROM notifications")).scalar_one()
            duplicates = c.execute(text(
                "SELECT count(*) FROM (SELECT notification_id FROM delivery_events WHERE kind = 'attempt' "
                "AND provider_message_id IS NOT NULL GROUP BY notification_id HAVING count(*) > 1) d")).scalar_one()
            recovered = c.execute(text("SELECT count(*) FROM delivery_events WHERE kind = 'recovered'")).scalar_one()
            republished = c.execute(text("SELECT count(*) FROM delivery_events WHERE kind = 'republished'")
                                    ).scalar_one()
        engine.dispose()
    purge_queues(broker)
    emit({"benchmark": "chaos", "broker": args.broker, "notifications": args.n, "stored": stored, "done": done,
          "lost": args.n - done, "duplicates": duplicates, "kills": kills, "broker_restarts": 1,
          "recovered_events": recovered, "republished_events": republished, "seconds": round(elapsed, 1)})


if __name__ == "__main__":
    main()
