"""End-to-end tests of the rep surfaces in real headless Chromium (Debian's, via Playwright)."""
