"""One range validator for every config section: the message names the key, the range
expected and the value found."""

from __future__ import annotations

from pipeline.errors import ConfigError


def in_range(key: str, value: float, lo: float | None = None, hi: float | None = None, *,
             above: bool = False, below: bool = False) -> None:
    """Raise :class:`ConfigError` unless ``lo <= value <= hi``; ``above`` / ``below`` make
    the bound strict (``lo < value`` / ``value < hi``). ``key`` is ``section.name``."""
    low_ok = lo is None or (value > lo if above else value >= lo)
    high_ok = hi is None or (value < hi if below else value <= hi)
    if low_ok and high_ok:
        return
    if lo is not None and hi is not None:
        expected = f"{lo:g}{' <' if above else ' <='} value{' <' if below else ' <='} {hi:g}"
        if not above and not below:
            expected = f"a number in [{lo:g}, {hi:g}]"
    elif lo is not None:
        expected = f"a number {'>' if above else '>='} {lo:g}"
    else:
        expected = f"a number {'<' if below else '<='} {hi:g}"
    raise ConfigError(f"{key}: expected {expected}, got {value!r}")
