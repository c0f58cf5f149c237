"""Read/write policies for simultaneous generation, one layer for text and speech.

`decision`, `bounds` and `words` hold the pure NumPy math of LSG (arrays in, a value out);
`drafting` builds greedy drafts on a backend's scoring context; `strategies` and `local_agreement`
turn a `DecisionView` of a stream into `Read` / `Write` decisions (LSG, LocalAgreement-2, wait-k,
offline); `options` holds their one options dataclass. Text (`lsg_edge.text.session`) and speech
(`lsg_edge.speech.window`) each supply a view; nothing here knows which one it is talking to.
"""
