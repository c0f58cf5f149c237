"""Model backends behind one protocol (`base.ScoringContext`); one adapter per runtime."""
