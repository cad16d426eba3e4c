"""Reads usage from response bodies with the pinned `genai-prices` package, and prices it.

For the differential test `flujo-pricing/tests/usage_agrees.rs`: reads JSON lines
`{"provider", "flavor", "at", "body"}` on stdin and writes, per line, `{"usage", "model",
"nanos"}` (`usage`: each unit the package read, an int, or a float or decimal as a string;
`model`: the id of the model the body names, as the package finds it; `nanos`: the exact
total rounded half-up to the nano-dollar), or `extract_error` / `price_error` where the
package refuses.
"""

import datetime
import json
import sys
import warnings
from decimal import ROUND_HALF_UP, Decimal

import genai_prices


def plain(value):
    return value if isinstance(value, int) else str(value)


def main() -> None:
    warnings.simplefilter('ignore')
    for line in sys.stdin:
        row = json.loads(line)
        out = {}
        try:
            extracted = genai_prices.extract_usage(
                row['body'], provider_id=row['provider'], api_flavor=row['flavor']
            )
        except Exception as error:  # noqa: BLE001 - the package's refusal is data here
            out['extract_error'] = f'{type(error).__name__}: {error}'
        else:
            usage = extracted.usage
            out['usage'] = {
                key: plain(value)
                for key, value in usage.__dict__.items()
                if not key.startswith('_') and value is not None
            }
            out['model'] = extracted.model.id if extracted.model else None
            at = datetime.datetime.fromisoformat(row['at'])
            try:
                if 'model' in row:
                    # A stream's usage event names no model: the call site does.
                    price = genai_prices.calc_price(
                        usage, row['model'], provider_id=row['provider'], genai_request_timestamp=at
                    )
                    out['model'] = price.model.id
                else:
                    price = extracted.calc_price(genai_request_timestamp=at)
            except Exception as error:  # noqa: BLE001
                out['price_error'] = f'{type(error).__name__}: {error}'
            else:
                nanos = (price.total_price * Decimal(10**9)).quantize(Decimal(1), rounding=ROUND_HALF_UP)
                out['nanos'] = int(nanos)
        sys.stdout.write(json.dumps(out) + '\n')


if __name__ == '__main__':
    main()
