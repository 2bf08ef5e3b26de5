"""Write a price file in openlit's own format from inferops' catalog, for ``--pricing-json``.

openlit downloads its price list at ``init()`` unless given ``pricing_json=<file>``, and
there is no internet here. Its chat prices are USD per 1K tokens, keyed by model name
(``get_chat_model_cost`` in ``openlit/__helpers.py``: ``promptPrice``, ``completionPrice``,
``cacheReadPrice``, ``cacheCreationPrice``). With prices for the benchmark's models openlit
does its full per-call work, cost computation included, as in production.

    python bench/peers/openlit_pricing.py OUT.json
"""

from __future__ import annotations

import json
import sys

from inferops.processors.catalog import builtin_catalog


def main(out: str) -> None:
    chat: dict[str, dict[str, float]] = {}
    for entry in builtin_catalog().entries.values():
        std = entry.prices.get("standard", {})
        if entry.mode != "chat" or "input" not in std or "output" not in std:
            continue
        row = {"promptPrice": std["input"] * 1000, "completionPrice": std["output"] * 1000}
        if "cache_read" in std:
            row["cacheReadPrice"] = std["cache_read"] * 1000
        if "cache_write_5m" in std:
            row["cacheCreationPrice"] = std["cache_write_5m"] * 1000
        for name in (entry.model, entry.key):
            chat.setdefault(name, row)
    with open(out, "w") as f:
        json.dump({"chat": chat, "embeddings": {}, "images": {}, "audio": {}}, f)
    print(f"{len(chat)} chat models -> {out}")


if __name__ == "__main__":
    main(sys.argv[1])
