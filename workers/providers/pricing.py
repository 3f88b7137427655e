"""Cost of a model call from a price table (USD per million tokens).

The table comes from settings (``RAGRELAY_ANTHROPIC_PRICES``): ``{model: {input, output,
cache_read, cache_write}}``. Anthropic bills the four token kinds separately: ``input_tokens``
are the uncached input only, so the four add up without overlap.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from bus.errors import ConfigError
from schemas import Usage

PER_MILLION = 1_000_000.0
_FIELDS = ("input", "output", "cache_read", "cache_write")


@dataclass(frozen=True)
class Price:
    """USD per million tokens of each kind."""

    input: float
    output: float
    cache_read: float
    cache_write: float

    def cost(
        self,
        *,
        input_tokens: int = 0,
        output_tokens: int = 0,
        cache_read_tokens: int = 0,
        cache_write_tokens: int = 0,
    ) -> float:
        total = (
            input_tokens * self.input
            + output_tokens * self.output
            + cache_read_tokens * self.cache_read
            + cache_write_tokens * self.cache_write
        )
        return round(total / PER_MILLION, 8)


class PriceTable:
    """Prices by model id. A dated snapshot id (``claude-haiku-4-5-20251001``) falls back to
    the longest listed id it starts with (``claude-haiku-4-5``)."""

    def __init__(self, prices: Mapping[str, Price]) -> None:
        self._prices = dict(prices)

    @classmethod
    def from_mapping(cls, raw: Mapping[str, Mapping[str, float]]) -> PriceTable:
        prices: dict[str, Price] = {}
        for model, row in raw.items():
            missing = [f for f in _FIELDS if f not in row]
            if missing:
                raise ConfigError(
                    f"RAGRELAY_ANTHROPIC_PRICES: model {model!r} lacks {', '.join(missing)} "
                    "(USD per million tokens: input, output, cache_read, cache_write)"
                )
            values = [float(row[f]) for f in _FIELDS]
            if any(v < 0 for v in values):
                raise ConfigError(f"RAGRELAY_ANTHROPIC_PRICES: negative price for {model!r}")
            prices[model] = Price(*values)
        return cls(prices)

    @property
    def models(self) -> list[str]:
        return sorted(self._prices)

    def find(self, model: str) -> Price | None:
        if model in self._prices:
            return self._prices[model]
        prefixes = [m for m in self._prices if model.startswith(m + "-")]
        return self._prices[max(prefixes, key=len)] if prefixes else None

    def price(self, model: str) -> Price:
        found = self.find(model)
        if found is None:
            raise ConfigError(
                f"no price for model {model!r}: add it to RAGRELAY_ANTHROPIC_PRICES "
                f"(known: {', '.join(self.models) or 'none'})"
            )
        return found

    def usage(
        self,
        model: str,
        *,
        input_tokens: int,
        output_tokens: int,
        cache_read_tokens: int = 0,
        cache_write_tokens: int = 0,
        calls: int = 1,
    ) -> Usage:
        """One call's :class:`Usage`, cost included."""
        cost = self.price(model).cost(
            input_tokens=input_tokens,
            output_tokens=output_tokens,
            cache_read_tokens=cache_read_tokens,
            cache_write_tokens=cache_write_tokens,
        )
        return Usage(
            llm_calls=calls,
            input_tokens=input_tokens,
            output_tokens=output_tokens,
            cache_read_tokens=cache_read_tokens,
            cache_write_tokens=cache_write_tokens,
            cost_usd=cost,
        )


__all__ = ["Price", "PriceTable"]
