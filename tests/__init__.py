"""The hotline test suite."""
