"""Messages per second and latency through the full pipeline on SQLite + memory.

10,000 messages from 1,000 simulated customers (a realistic mix: greetings, pre-sale
questions, returns forms, status checks, some complaints and handoffs), against two
baselines measured in the same process on the same machine:
  * classify-only: the classifier alone on the same texts (the CPU floor);
  * bare-insert: one one-row insert + commit per message on the same SQLite file, through
    the ticket store's ``insert_messages`` (the statement a turn uses; the storage floor).
Run: ``.venv/bin/python bench/pipeline.py [--messages N] [--customers N] [--concurrency N]``
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bot.app import build_app  # noqa: E402
from bot.config import load_settings  # noqa: E402
from common.messages import Incoming  # noqa: E402
from storage.models import Author, DeliveryStatus, Direction  # noqa: E402
from tests.factories import add_orders, order  # noqa: E402

SCRIPTS = [
    ["hi", "how much is the hoodie?", "do you have it in L?", "thanks, bye"],
    ["hello", "how long does shipping take to france", "can I pay with paypal?", "ok thanks"],
    ["I want to return order A30001", "alice@example.com", "it is too small", "/choose{\"resolution\": \"refund\"}",
     "/affirm"],
    ["你好", "卫衣多少钱", "有L码吗", "谢谢"],
    ["where is my order A30001?", "what's the status of my tickets", "thank you"],
    ["what's your return policy?", "do you ship to china", "bye"],
    ["the parcel arrived damaged, this is unacceptable", "hello?", "any news?"],
    ["I want to talk to a human", "it's about an invoice", "still waiting"],
]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def plan(messages: int, customers: int, seed: int = 7) -> list[list[str]]:
    """Per customer, the texts it sends in order (scripts repeated to reach the total)."""
    rng = random.Random(seed)
    per_customer = [[] for _ in range(customers)]  # type: list[list[str]]
    i = 0
    while i < messages:
        for c in range(customers):
            if i >= messages:
                break
            script = SCRIPTS[(c + len(per_customer[c])) % len(SCRIPTS)] if not per_customer[c] else None
            if script is None:
                script = SCRIPTS[rng.randrange(len(SCRIPTS))]
            take = script[: min(len(script), messages - i)]
            per_customer[c].extend(take)
            i += len(take)
    return per_customer


async def run(messages: int, customers: int, concurrency: int) -> None:
    tmp = Path(tempfile.mkdtemp(prefix="deskbot-bench-"))
    settings = load_settings(
        ROOT / "config.yaml",
        environ={
            "DESKBOT_STORAGE__URL": f"sqlite+aiosqlite:///{tmp / 'bench.db'}",
            "DESKBOT_CLASSIFIER__MODEL_PATH": str(tmp / "model.npz"),
            "DESKBOT_LOGGING__LEVEL": "WARNING",
        },
    )
    work = plan(messages, customers)
    texts = [t for seq in work for t in seq if not t.startswith("/")]
    async with build_app(settings, create_schema=True) as app:
        await add_orders(app, order("A30001"))
        # warm-up (JIT-free Python, but caches, SQLite pages, connection pool)
        for t in texts[:200]:
            await app.classifier.predict(t)

        started = time.perf_counter()
        for t in texts:
            await app.classifier.predict(t)
        classify_rate = len(texts) / (time.perf_counter() - started)

        async with app.tickets.session() as tx:
            customer, _ = await tx.resolve_customer("bench", "baseline", "baseline")
        started = time.perf_counter()
        for n in range(messages):
            # Through the store's public method, the one a turn uses for its messages.
            async with app.tickets.session() as tx:
                await tx.insert_messages([{"customer_id": customer.id, "channel": "bench", "chat_id": "b",
                                           "direction": Direction.INBOUND, "author": Author.CUSTOMER,
                                           "text": texts[n % len(texts)], "status": DeliveryStatus.RECEIVED}])
        insert_rate = messages / (time.perf_counter() - started)

        latencies: list[float] = []
        semaphore = asyncio.Semaphore(concurrency)
        counter = iter(range(10**9))

        async def customer_task(c: int, seq: list[str]) -> None:
            for text in seq:
                async with semaphore:
                    payload = text if text.startswith("/") else None
                    msg = Incoming("bench", f"c{c}", f"c{c}", "" if payload else text, delivery_key=str(next(counter)),
                                   payload=payload)
                    t0 = time.perf_counter()
                    await app.pipeline.handle(msg)
                    latencies.append((time.perf_counter() - t0) * 1000)

        started = time.perf_counter()
        await asyncio.gather(*(customer_task(c, seq) for c, seq in enumerate(work)))
        elapsed = time.perf_counter() - started
    rate = len(latencies) / elapsed
    print(f"pipeline benchmark: {len(latencies)} messages, {customers} customers, concurrency {concurrency}, "
          f"SQLite + memory state")
    print(f"  full pipeline      {rate:9.0f} msg/s   p50 {percentile(latencies, .5):6.2f} ms   "
          f"p99 {percentile(latencies, .99):6.2f} ms   mean {statistics.fmean(latencies):.2f} ms")
    print(f"  baseline classify  {classify_rate:9.0f} msg/s   (pipeline = {rate / classify_rate:.2f}x of it)")
    print(f"  baseline insert    {insert_rate:9.0f} msg/s   (pipeline = {rate / insert_rate:.2f}x of it)")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument("--customers", type=int, default=1_000)
    parser.add_argument("--concurrency", type=int, default=1)
    args = parser.parse_args()
    asyncio.run(run(args.messages, args.customers, args.concurrency))


if __name__ == "__main__":
    main()
