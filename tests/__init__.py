"""The test suite; a package so that its helpers import by name (tests.helpers)."""
