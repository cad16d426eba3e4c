"""Prices a grid of usages for every model of the pinned `genai-prices` package, for the
differential test `flujo-pricing/tests/genai_prices_agree.rs`: one JSON object per line,
`{"provider", "model", "usage", "at", "found", "nanos"}` (`nanos`: the exact Decimal total
rounded half-up to the nano-dollar; `found`: the model id the package matched; `error`
instead when it prices nothing).

The grid: small and large calls, cache reads and writes (one-hour writes too), reasoning, at and across every tier
start a model has, on the day before and the day of every dated price, and inside and
outside every time-of-day window; and for every price variant (batch, service tiers), its
request context, also around the variant's own start date.
"""

import datetime
import json
import sys
import warnings
from decimal import ROUND_HALF_UP, Decimal

import genai_prices
import genai_prices.data
from genai_prices import types

UTC = datetime.timezone.utc
BASE_USAGES = [
    {'input_tokens': 1_000, 'output_tokens': 200},
    {'input_tokens': 150_000, 'output_tokens': 8_000},
    {'input_tokens': 50_000, 'cache_read_tokens': 30_000, 'output_tokens': 1_000},
    {'input_tokens': 40_000, 'cache_write_tokens': 20_000, 'output_tokens': 500},
    {'input_tokens': 90_000, 'cache_read_tokens': 40_000, 'cache_write_tokens': 10_000, 'output_tokens': 700},
    {'input_tokens': 2_000, 'output_tokens': 5_000, 'output_reasoning_tokens': 3_000},
    {'input_tokens': 60_000, 'cache_write_tokens': 30_000, 'cache_write_1h_tokens': 20_000, 'output_tokens': 400},
    {'input_tokens': 60_000, 'cache_read_tokens': 10_000, 'cache_write_tokens': 5_000, 'cache_write_1h_tokens': 5_000, 'output_tokens': 400},
    {'input_tokens': 3, 'output_tokens': 1},
]
DEFAULT_AT = datetime.datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


def prices_of(model: types.ModelInfo):
    if isinstance(model.prices, types.ModelPrice):
        return [(None, model.prices)]
    return [(c.constraint, c.prices) for c in model.prices]


def tier_starts(prices: types.ModelPrice):
    for value in prices.__dict__.values():
        if isinstance(value, types.TieredPrices):
            for tier in value.tiers:
                yield tier.start


def usages(model: types.ModelInfo):
    yield from BASE_USAGES
    for start in sorted({s for _, p in prices_of(model) for s in tier_starts(p)}):
        for input_tokens in (start, start + 1):
            yield {'input_tokens': input_tokens, 'output_tokens': 1_000}
            yield {'input_tokens': input_tokens, 'cache_read_tokens': start // 2, 'output_tokens': 1_000}


def times(model: types.ModelInfo):
    yield DEFAULT_AT
    for constraint, _ in prices_of(model):
        if isinstance(constraint, types.StartDateConstraint):
            day = datetime.datetime.combine(constraint.start_date, datetime.time(12), tzinfo=UTC)
            yield day - datetime.timedelta(days=1)
            yield day
        elif isinstance(constraint, types.TimeOfDateConstraint):
            for moment in (constraint.start_time, constraint.end_time):
                at = datetime.datetime.combine(DEFAULT_AT.date(), moment.replace(tzinfo=None), tzinfo=UTC)
                yield at
                yield at - datetime.timedelta(minutes=1)


def contexts(model: types.ModelInfo):
    """No request context, and each context a price variant of the model is selected by."""
    yield None
    seen = []
    for variant in model.price_variants or ():
        if variant.when not in seen:
            seen.append(variant.when)
            yield variant.when


def variant_times(model: types.ModelInfo):
    for variant in model.price_variants or ():
        if isinstance(variant.constraint, types.StartDateConstraint):
            day = datetime.datetime.combine(variant.constraint.start_date, datetime.time(12), tzinfo=UTC)
            yield day - datetime.timedelta(days=1)
            yield day


def main() -> None:
    warnings.simplefilter('ignore')
    out = sys.stdout
    for provider in genai_prices.data.providers:
        for model in provider.models:
            for context in contexts(model):
                at_times = list(times(model)) + (list(variant_times(model)) if context else [])
                for at in at_times:
                    for usage in usages(model) if context is None else BASE_USAGES[:4]:
                        out.write(json.dumps(price_row(provider, model, usage, at, context)) + '\n')


def price_row(provider, model, usage, at, context):
    row = {'provider': provider.id, 'model': model.id, 'usage': usage, 'at': at.isoformat()}
    if context:
        row['context'] = context
    try:
        price = genai_prices.calc_price(
            types.Usage(**usage),
            model.id,
            provider_id=provider.id,
            genai_request_timestamp=at,
            price_context=context,
        )
    except Exception as error:  # noqa: BLE001 - the package's refusal is data here
        row['error'] = f'{type(error).__name__}: {error}'
    else:
        row['found'] = price.model.id
        nanos = (price.total_price * Decimal(10**9)).quantize(Decimal(1), rounding=ROUND_HALF_UP)
        row['nanos'] = int(nanos)
    return row


if __name__ == '__main__':
    main()
