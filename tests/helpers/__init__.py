"""Helpers shared by the tests: tiny models, a toy language model, fixture markers. Imported
explicitly (`from tests.helpers.toy_model import ...`); nothing here is collected as a test."""
