"""Writes genai-prices' price data as JSON, from the pinned package's own data module.

The PyPI wheel of `genai-prices` ships its data as Python (`genai_prices/data.py`, generated
upstream from `prices/data.json`); this writes it back in the JSON form the package's updater
reads (`new_data/v2/data.json`: providers, their usage extractors, models, match rules and
prices), with every price as the exact decimal the package computes with, and the units the
prices and usages are counted in (`data_units.py`). Only what reads and prices a call is kept
(no descriptions or URLs).

Run: `python3 scripts/genai-prices-data.py OUT.json` with `genai-prices` importable
(`scripts/test.sh` installs the pinned version into `.backends/genai-prices/`).
"""

import datetime
import json
import re
import sys
from decimal import Decimal

import genai_prices
import genai_prices.data
import genai_prices.data_units
from genai_prices import types


# A decimal goes through `json` as a marked string and comes out as a JSON number with its
# exact digits (`json` would write a float's shortest repr, which is not always the decimal).
MARK = 'exact-decimal:'


def Exact(value: Decimal) -> str:
    return MARK + format(value, 'f')


def price_value(value):
    if isinstance(value, types.TieredPrices):
        return {
            'base': Exact(value.base),
            'tiers': [{'start': tier.start, 'price': Exact(tier.price)} for tier in value.tiers],
        }
    return Exact(value)


def model_price(prices: types.ModelPrice):
    return {
        key: price_value(value)
        for key, value in prices.__dict__.items()
        if not key.startswith('_') and value is not None
    }


def clock(value: datetime.time) -> str:
    return value.isoformat()


def constraint(value):
    if value is None:
        return None
    if isinstance(value, types.StartDateConstraint):
        return {'start_date': value.start_date.isoformat()}
    return {'start_time': clock(value.start_time), 'end_time': clock(value.end_time)}


def match(clause):
    if clause is None:
        return None
    if isinstance(clause, types.ClauseOr):
        return {'or': [match(c) for c in clause.or_]}
    if isinstance(clause, types.ClauseAnd):
        return {'and': [match(c) for c in clause.and_]}
    (field,) = [f for f in ('equals', 'starts_with', 'ends_with', 'contains', 'regex') if hasattr(clause, f)]
    return {field: getattr(clause, field)}


def prices(value):
    if isinstance(value, types.ModelPrice):
        return model_price(value)
    return [{'constraint': constraint(c.constraint), 'prices': model_price(c.prices)} for c in value]


def model(info: types.ModelInfo):
    out = {'id': info.id, 'match': match(info.match), 'prices': prices(info.prices)}
    if info.name:
        out['name'] = info.name
    if info.price_variants:
        out['price_variants'] = [
            {'when': v.when, 'constraint': constraint(v.constraint), 'prices': model_price(v.prices)}
            for v in info.price_variants
        ]
    return out


def path(value):
    if isinstance(value, str):
        return value
    return [
        step if isinstance(step, str) else {'type': step.type, 'field': step.field, 'match': match(step.match)}
        for step in value
    ]


def extractor(e: types.UsageExtractor):
    return {
        'api_flavor': e.api_flavor,
        'root': path(e.root),
        'model_path': path(e.model_path),
        'mappings': [{'path': path(m.path), 'dest': m.dest, 'required': m.required} for m in e.mappings],
    }


def provider(p: types.Provider):
    out = {'id': p.id, 'name': p.name, 'api_pattern': p.api_pattern}
    if p.model_match is not None:
        out['model_match'] = match(p.model_match)
    if p.provider_match is not None:
        out['provider_match'] = match(p.provider_match)
    if p.extractors:
        out['extractors'] = [extractor(e) for e in p.extractors]
    if p.fallback_model_providers:
        out['fallback_model_providers'] = p.fallback_model_providers
    out['models'] = [model(m) for m in p.models]
    return out


def main() -> None:
    data = {
        'genai_prices_version': genai_prices.__version__,
        'units': genai_prices.data_units.unit_data,
        'providers': [provider(p) for p in genai_prices.data.providers],
    }
    text = json.dumps(data, indent=1, ensure_ascii=False)
    text = re.sub('"' + MARK + r'([0-9.]+)"', r'\1', text)
    with open(sys.argv[1], 'w') as out:
        out.write(text)
        out.write('\n')


if __name__ == '__main__':
    main()
