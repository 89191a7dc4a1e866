"""What the tests share: fixtures (registered by the root conftest as pytest plugins) and helpers. No tests here."""
