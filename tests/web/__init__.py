"""In-process Flask test-client tests: the webhooks, the console pages, the JSON API, /metrics, the CLI via
CliRunner."""
