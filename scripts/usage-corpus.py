"""Writes a response body for every usage extractor of the pinned `genai-prices` package.

For the differential test `flujo-pricing/tests/usage_agrees.rs`, beside the recorded bodies
of `flujo-pricing/tests/corpus/recorded.jsonl`: each extractor (provider and API flavor) gets
a body holding only what it requires, one holding every count it reads (with cache,
reasoning, modality and tool details where it has them, each below the count it is part of),
and, for a model whose prices have tiers, one whose input crosses the first tier. One JSON
object per line: `{"provider", "flavor", "at", "body"}`.

Run: `python3 scripts/usage-corpus.py > flujo-pricing/tests/corpus/extractors.jsonl` with
`genai-prices` importable (`scripts/test.sh` installs the pinned version into
`.backends/genai-prices/`).
"""

import json
import sys

import genai_prices.data
from genai_prices import data_units, types

AT = '2026-06-01T12:00:00+00:00'
# A count by how specific its unit is (the number of its dimensions), so that a more specific
# count stays below the counts it is part of, as real responses have them.
BY_DEPTH = {2: 100_000, 3: 6_000, 4: 700, 5: 60}
OUTPUT_BY_DEPTH = {2: 4_000, 3: 600, 4: 70, 5: 6}


def count(dest: str) -> int:
    unit = data_units.unit_data[dest]
    dimensions = unit['dimensions']
    if dimensions.get('family') != 'tokens':
        return 3
    table = OUTPUT_BY_DEPTH if dimensions.get('direction') == 'output' else BY_DEPTH
    return table[len(dimensions)]


def steps(path):
    return [path] if isinstance(path, str) else list(path)


def put(body, path, value):
    """Sets `value` at `path` in `body`, making the objects and matching array items on the way."""
    *walk, last = steps(path)
    here = body
    for at, step in enumerate(walk):
        if isinstance(step, types.ArrayMatch):
            if not isinstance(step.match, types.ClauseEquals):
                return False
            items = here if isinstance(here, list) else None
            if items is None:
                return False
            item = next((i for i in items if i.get(step.field) == step.match.equals), None)
            if item is None:
                item = {step.field: step.match.equals}
                items.append(item)
            here = item
        else:
            following = walk[at + 1] if at + 1 < len(walk) else None
            default = [] if isinstance(following, types.ArrayMatch) else {}
            here = here.setdefault(step, default)
    here[last] = value
    return True


def priced_models(provider):
    """The provider's model with the most prices (the one that prices the most units a body
    may report), and its first model with tiers (if any) with the first tier's start."""
    richest, most, tiered = None, 0, None
    for model in provider.models:
        prices = model.prices if isinstance(model.prices, types.ModelPrice) else model.prices[-1].prices
        values = [v for k, v in prices.__dict__.items() if not k.startswith('_') and v is not None]
        if len(values) > most:
            richest, most = model.id, len(values)
        if tiered is None and any(isinstance(v, types.TieredPrices) for v in values):
            tiered = (model.id, min(t.start for v in values if isinstance(v, types.TieredPrices) for t in v.tiers))
    return richest, tiered


def body_for(extractor, model, required_only, input_scale=1):
    body = {}
    put(body, extractor.model_path, model)
    put(body, extractor.root, {})
    usage = body
    for step in steps(extractor.root):
        usage = usage[step]
    for index, mapping in enumerate(extractor.mappings):
        if required_only and not mapping.required:
            continue
        if mapping.dest not in data_units.unit_data or mapping.dest == 'requests':
            continue
        value = count(mapping.dest) + index
        if mapping.dest == 'input_tokens':
            value *= input_scale
        put(usage, mapping.path, value)
    return body


def main() -> None:
    out = sys.stdout
    for provider in genai_prices.data.providers:
        plain, tiered = priced_models(provider)
        for extractor in provider.extractors or ():
            rows = [body_for(extractor, plain, True), body_for(extractor, plain, False)]
            if tiered is not None:
                model, start = tiered
                scale = start // BY_DEPTH[2] + 1
                rows.append(body_for(extractor, model, False, scale))
            for body in rows:
                row = {'provider': provider.id, 'flavor': extractor.api_flavor, 'at': AT, 'body': body}
                out.write(json.dumps(row) + '\n')


if __name__ == '__main__':
    main()
