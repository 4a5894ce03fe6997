"""What the Rasa backend adds per message, next to the HTTP call it cannot avoid.

A fake Rasa 3.6 server (tests/fakes/rasa_nlu.py) on 127.0.0.1 answers a realistic parse
result (10-intent ranking, entities, text tokens, response selector). Measured in one process:
  * baseline: a bare ``httpx`` POST to ``/model/parse`` + ``json`` decode (the floor any client pays);
  * deskbot: ``RasaHttpClassifier.predict`` (same call + validation, name maps, threshold,
    deskbot's own entity extractors merged in);
  * mapping only: ``to_prediction`` on an already-decoded answer (deskbot's CPU cost).
Run: ``.venv/bin/python bench/rasa_http.py [--messages N]``
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402

from intents.entities import EntityExtractor  # noqa: E402
from intents.nlu_data import load_nlu_data  # noqa: E402
from intents.rasa_config import RasaConfig  # noqa: E402
from intents.rasa_http import RasaHttpClassifier  # noqa: E402
from tests.fakes.rasa_nlu import FakeEntity, FakeRasa, RunningServer, create_fake_rasa_app  # noqa: E402

TEXTS = [
    ("I want to return the hoodie from order A10234, it is too small", "request_return",
     (FakeEntity("order_id", "A10234", extractor="RegexEntityExtractor"),
      FakeEntity("product", "hoodie", value="HD-001"))),
    ("where is my ticket T-1042?", "ticket_status", (FakeEntity("ticket_number", "T-1042"),)),
    ("this is unacceptable, the parcel arrived broken", "complaint", ()),
    ("hi there", "greet", ()),
]
INTENTS = ["greet", "request_return", "complaint", "ticket_status", "goodbye", "affirm", "deny", "inform",
           "ask_product", "order_status", "thanks", "cancel"]


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def main(messages: int) -> None:
    fake = FakeRasa(intents=list(INTENTS))
    for text, intent, entities in TEXTS:
        fake.understand(text, intent, 0.97, *entities)
    server = RunningServer(create_fake_rasa_app(fake))
    await server.start()
    extractor = EntityExtractor.from_nlu(load_nlu_data(ROOT / "intents" / "data"))
    classifier = RasaHttpClassifier.from_config(RasaConfig(url=server.url), threshold=0.3, extractor=extractor)
    try:
        async with httpx.AsyncClient(base_url=server.url) as bare:
            for _ in range(50):  # warm-up: connections, caches
                await bare.post("/model/parse", json={"text": TEXTS[0][0]})
                await classifier.predict(TEXTS[0][0], "en")
            base, ours = [], []
            for i in range(messages):
                text = TEXTS[i % len(TEXTS)][0]
                started = time.perf_counter()
                (await bare.post("/model/parse", json={"text": text})).json()
                base.append((time.perf_counter() - started) * 1000)
                started = time.perf_counter()
                await classifier.predict(text, "en")
                ours.append((time.perf_counter() - started) * 1000)
            answers = [(t, fake.parse_result(t)) for t, _, _ in TEXTS]
            mapping = []
            for i in range(messages):
                text, data = answers[i % len(answers)]
                started = time.perf_counter()
                classifier.to_prediction(text, data, "en")
                mapping.append((time.perf_counter() - started) * 1000)
    finally:
        await classifier.close()
        await server.stop()
    print(f"Rasa backend, {messages} messages against a local fake Rasa 3.6 (one process, 127.0.0.1)")
    print("| path | p50 ms | p99 ms | mean ms |")
    print("|---|---|---|---|")
    for name, values in (("bare httpx POST + json (baseline)", base), ("RasaHttpClassifier.predict", ours),
                         ("mapping only (to_prediction)", mapping)):
        print(f"| {name} | {pct(values, 0.5):.3f} | {pct(values, 0.99):.3f} | {statistics.fmean(values):.3f} |")
    print(f"predict / baseline (p50): {pct(ours, 0.5) / pct(base, 0.5):.2f}x; "
          f"deskbot's own CPU per message (p50): {pct(mapping, 0.5) * 1000:.0f} µs")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=2000)
    asyncio.run(main(parser.parse_args().messages))
