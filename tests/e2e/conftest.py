"""What every browser test shares: Playwright's `expect` waits up to 15 s (its default is 5 s)
for a page to show what is awaited. Live pages change on the poller's schedule, which a loaded
CI machine stretches; a page that never shows it still fails, only later."""

from playwright.sync_api import expect

expect.set_options(timeout=15_000)
