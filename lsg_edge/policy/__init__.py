"""Read/write policies for simultaneous generation.

`decision`, `bounds` and `words` hold the pure NumPy math of LSG (arrays in, a value out); the
strategy objects in `strategies` put that math on top of a backend, beside the wait-k and offline
baselines used for comparison.
"""
