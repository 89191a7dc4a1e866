"""The console in real headless Chromium (Playwright)."""
